"""``read_usage_line``: one test per rule, no binary (the parity tests hold it to ccusage)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ingestor.usage.accept import Rejected, Rule, UsageLine, read_usage_line

TS = "2025-10-01T10:00:00.000Z"


def _line(**top: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sessionId": "s",
        "version": "2.0.14",
        "message": {
            "id": "msg_1",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}],
            "stop_reason": None,
            "usage": {
                "input_tokens": 4,
                "output_tokens": 5,
                "cache_creation_input_tokens": 60,
                "cache_read_input_tokens": 7,
            },
        },
        "requestId": "req_1",
        "timestamp": TS,
    }
    base.update(top)
    return base


def _usage(**fields: Any) -> dict[str, Any]:
    line = _line()
    line["message"]["usage"].update(fields)
    return line


def _rule(raw: bytes, *, daily: bool = False) -> Rule | None:
    verdict = read_usage_line(raw, daily=daily)
    return verdict.rule if isinstance(verdict, Rejected) else None


def test_valid_line_is_read_with_or_without_a_parsed_object() -> None:
    raw = orjson.dumps(_line())
    verdict = read_usage_line(raw)
    assert isinstance(verdict, UsageLine)
    assert verdict == read_usage_line(raw, orjson.loads(raw))
    assert (verdict.input_tokens, verdict.output_tokens, verdict.cache_creation_tokens) == (
        4,
        5,
        60,
    )
    assert verdict.timestamp_ms == 1_759_312_800_000
    assert verdict.ephemeral_5m is None


def test_cache_creation_object_wins_and_defaults_to_zero() -> None:
    verdict = read_usage_line(orjson.dumps(_usage(cache_creation={"ephemeral_1h_input_tokens": 9})))
    assert isinstance(verdict, UsageLine)
    assert (verdict.ephemeral_5m, verdict.ephemeral_1h, verdict.cache_creation_tokens) == (0, 9, 9)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b'{"type":"user","message":{"role":"user","content":"hi"}}',
        b'{"toolUseResult":{"usage":{"input_tokens":1}},"timestamp":"x"}',
        b"not json at all",
    ],
)
def test_non_usage_lines_are_none(raw: bytes) -> None:
    assert read_usage_line(raw) is None


def test_agent_progress_counts_only_for_daily() -> None:
    inner = _line()
    raw = orjson.dumps({"type": "progress", "data": {"message": inner}, "sessionId": "s"})
    assert read_usage_line(raw) is None
    assert isinstance(read_usage_line(raw, daily=True), UsageLine)


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (orjson.dumps(_line()).replace(b'"usage":{', b'"usage": {'), Rule.NO_USAGE_MARKER),
        (orjson.dumps(_line(sessionId=None)), Rule.NULL_FIELD),
        (orjson.dumps(_line()).replace(b'"version":', b'"cwd" : null,"version":'), Rule.NULL_FIELD),
        (b'{"usage":{ oops', Rule.INVALID_JSON),
        (b"\xef\xbb\xbf" + orjson.dumps(_line()), Rule.INVALID_JSON),
        (orjson.dumps(_line()) + b"x", Rule.INVALID_JSON),
        (orjson.dumps(_line()).replace(b'"s"', b'"\\ud800"'), Rule.INVALID_STRING),
        (orjson.dumps(_line()).replace(b'"s"', b'"\xff"'), Rule.INVALID_STRING),
        (
            orjson.dumps(_line(costUSD=1)).replace(b'"costUSD":1', b'"costUSD":1e400'),
            Rule.NUMBER_OUT_OF_RANGE,
        ),
        (
            orjson.dumps(_line(x=0)).replace(b'"x":0', b'"x":' + b"[" * 130 + b"]" * 130),
            Rule.TOO_DEEP,
        ),
        (orjson.dumps(_usage(input_tokens=-1)), Rule.FIELD_TYPE),
        (orjson.dumps(_usage(input_tokens=1.0)), Rule.FIELD_TYPE),
        (
            orjson.dumps(_usage(input_tokens=0)).replace(b'"input_tokens":0', b'"input_tokens":-0'),
            Rule.FIELD_TYPE,
        ),
        (orjson.dumps(_usage(input_tokens="4")), Rule.FIELD_TYPE),
        (orjson.dumps(_usage(speed="turbo")), Rule.FIELD_TYPE),
        (orjson.dumps(_line(isSidechain="false")), Rule.FIELD_TYPE),
        (orjson.dumps(_line(sessionId=1)), Rule.FIELD_TYPE),
        (
            orjson.dumps(_line(timestamp=None)).replace(b',"timestamp":null', b""),
            Rule.MISSING_FIELD,
        ),
        (orjson.dumps(_line()).replace(b'"input_tokens":4,', b""), Rule.MISSING_FIELD),
        (
            orjson.dumps(_line()).replace(b'"requestId":', b'"sessionId":"t","requestId":'),
            Rule.DUPLICATE_FIELD,
        ),
        (orjson.dumps(_line(x=1)).replace(b'"x":1', b'"x":1,"x":2'), Rule.DUPLICATE_FIELD),
        (orjson.dumps(_line(timestamp="2025-10-01T10:00:00.123456Z")), Rule.BAD_TIMESTAMP),
        (orjson.dumps(_line(timestamp="2025-10-01T10:00:00+24:00")), Rule.BAD_TIMESTAMP),
        (orjson.dumps(_line(timestamp="2023-02-29T10:00:00Z")), Rule.BAD_TIMESTAMP),
        (orjson.dumps(_line(version="v1.0.0")), Rule.VERSION_NOT_SEMVER),
        (orjson.dumps(_line(sessionId="")), Rule.EMPTY_SESSION_ID),
        (orjson.dumps(_line(requestId="")), Rule.EMPTY_REQUEST_ID),
        (orjson.dumps(_line()).replace(b'"msg_1"', b'""'), Rule.EMPTY_MESSAGE_ID),
        (orjson.dumps(_line()).replace(b'"claude-sonnet-4-5-20250929"', b'""'), Rule.EMPTY_MODEL),
    ],
)
def test_each_rule(raw: bytes, rule: Rule) -> None:
    assert _rule(raw) is rule


def test_unknown_duplicates_pass_without_null_in_the_line() -> None:
    raw = orjson.dumps(_line(x=1)).replace(b'"stop_reason":null,', b"")
    assert isinstance(read_usage_line(raw.replace(b'"x":1', b'"x":1,"x":2')), UsageLine)


def test_daily_differs_on_api_error_flag_and_buffered_values() -> None:
    flag = orjson.dumps(_line(isApiErrorMessage="yes"))
    assert _rule(flag) is Rule.FIELD_TYPE
    assert isinstance(read_usage_line(flag, daily=True), UsageLine)
    clean = orjson.dumps(_line(x=1)).replace(b'"stop_reason":null,', b"")
    huge = clean.replace(b'"x":1', b'"x":1e400')
    assert isinstance(read_usage_line(huge), UsageLine)
    assert _rule(huge, daily=True) is Rule.NUMBER_OUT_OF_RANGE


def test_speed_unit_variant_map_and_usage_limit_reset() -> None:
    fast = read_usage_line(orjson.dumps(_usage(speed={"fast": None})))
    assert isinstance(fast, UsageLine) and fast.speed == "fast"
    line = _line(isApiErrorMessage=True)
    line["message"]["content"] = [
        {"type": "text", "text": "Claude AI usage limit reached|1759320000"}
    ]
    verdict = read_usage_line(orjson.dumps(line))
    assert isinstance(verdict, UsageLine) and verdict.usage_limit_reset_ms == 1_759_320_000_000


def test_array_form_struct_is_read_like_serde() -> None:
    raw = (
        b'["s","2025-10-01T10:00:00.000Z","2.0.1",{"usage":{"input_tokens":5,'
        b'"output_tokens":1},"model":"m","id":"a"},null,null,null,null]'
    )
    verdict = read_usage_line(raw)
    assert isinstance(verdict, UsageLine) and verdict.input_tokens == 5


def test_ephemeral_sum_saturates_at_u64() -> None:
    verdict = read_usage_line(
        orjson.dumps(
            _usage(
                cache_creation={
                    "ephemeral_5m_input_tokens": 2**64 - 1,
                    "ephemeral_1h_input_tokens": 5,
                }
            )
        )
    )
    assert isinstance(verdict, UsageLine) and verdict.cache_creation_tokens == 2**64 - 1


def test_detail_never_carries_line_values() -> None:
    secret = "s3cr3t-value"
    for line in (_line(version=secret), _line(sessionId=7), _usage(speed=secret)):
        verdict = read_usage_line(orjson.dumps(line))
        assert isinstance(verdict, Rejected) and secret not in verdict.detail
