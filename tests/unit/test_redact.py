from __future__ import annotations

from typing import Any

import orjson

from ingestor.redact import EVENT_STRINGS, MAX_STRING_CHARS, structure

MARK = "MARKER-7f3a"


def usage_line() -> dict[str, Any]:
    return {
        "type": "assistant",
        "timestamp": "2025-01-01T00:00:00Z",
        "sessionId": "s1",
        "requestId": "req_1",
        "version": "1.0.0",
        "cwd": f"/home/{MARK}",
        "isSidechain": False,
        "costUSD": 0.5,
        "message": {
            "id": "msg_1",
            "model": "claude-sonnet-4",
            "role": "assistant",
            "content": [{"type": "text", "text": MARK}],
            "usage": {
                "input_tokens": "12",
                "output_tokens": 3,
                "cache_creation": {"ephemeral_5m_input_tokens": 1},
                "service_tier": "standard",
                "note": MARK,
            },
        },
        "toolUseResult": {"stdout": MARK, "nested": {"deep": {"x": MARK}}},
        f"{MARK} as a key with spaces": MARK,
    }


def test_keeps_keys_types_and_usage_fields_never_text() -> None:
    shape = structure(usage_line())
    assert MARK not in orjson.dumps(shape).decode()
    assert shape["timestamp"] == "2025-01-01T00:00:00Z" and shape["requestId"] == "req_1"
    assert shape["cwd"] == "<string>" and shape["costUSD"] == 0.5
    assert shape["message"]["content"] == "<array>"
    assert shape["message"]["id"] == "msg_1" and shape["message"]["model"] == "claude-sonnet-4"
    usage = shape["message"]["usage"]
    assert usage["input_tokens"] == "<string>" and usage["output_tokens"] == 3
    assert usage["cache_creation"] == {"ephemeral_5m_input_tokens": 1}
    assert usage["service_tier"] == "standard" and usage["note"] == "<string>"
    assert shape["toolUseResult"] == {"stdout": "<string>", "nested": {"deep": {"x": "<string>"}}}
    assert shape["<key#1>"] == "<string>"


def test_applied_again_it_keeps_nothing_more() -> None:
    once = structure(usage_line())
    assert structure(once) == once


def test_is_bounded_in_depth_nodes_and_string_length() -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(20):
        deep = {"d": deep}
    assert "1" not in orjson.dumps(structure(deep)).decode()  # cut at MAX_DEPTH
    wide = {f"k{i}": i for i in range(10_000)}
    assert len(structure(wide)) <= 257
    long_id = {"requestId": "r" * 10_000}
    assert len(structure(long_id)["requestId"]) == MAX_STRING_CHARS


def test_events_keep_ids_and_numbers_not_prompt_or_error_text() -> None:
    event = {
        "event_id": "e1",
        "event_type": "prompt_call",
        "tokens_input": 5,
        "prompt": MARK,
        "response": MARK,
        "error_message": MARK,
        "tags": [MARK],
    }
    shape = structure(event, EVENT_STRINGS)
    assert MARK not in orjson.dumps(shape).decode()
    assert shape["event_id"] == "e1" and shape["tokens_input"] == 5
    assert shape["prompt"] == shape["error_message"] == "<string>" and shape["tags"] == "<array>"
