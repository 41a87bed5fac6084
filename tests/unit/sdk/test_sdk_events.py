from __future__ import annotations

import hashlib
import uuid

from ingestor.sdk import _events
from ingestor.sdk._events import PROMPT, RESPONSE, event_id, finalize, random_id, text_of


def test_an_idempotency_key_gives_one_id_per_project_type_and_key() -> None:
    a = event_id("p", "prompt_call", "k1")
    assert a == event_id("p", "prompt_call", "k1")
    assert len({a, event_id("p", "error", "k1"), event_id("q", "prompt_call", "k1")}) == 3
    assert event_id("p", "prompt_call", None) != event_id("p", "prompt_call", None)


def test_random_ids_are_version_4_uuids() -> None:
    ids = {random_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in list(ids)[:50]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_caller_ids_come_from_the_sender_made_pool_and_a_fork_never_reuses_it() -> None:
    _events._IDS.clear()
    made_here = _events.take_id()  # an empty pool: the caller makes its own
    _events.refill_ids()
    pooled = list(_events._IDS)
    assert len(pooled) == _events._REFILL_MAX  # a little at a time: the GIL is held briefly
    taken = [_events.take_id() for _ in range(3)]
    assert taken == pooled[:3]
    assert len({made_here, *pooled}) == len(pooled) + 1
    assert all(uuid.UUID(i).version == 4 for i in taken)
    _events.reseed()  # in a forked child: the parent's pooled ids are the parent's
    assert len(_events._IDS) == 0 and _events.take_id() not in pooled


def test_text_is_sized_and_hashed_and_never_sent_by_default() -> None:
    event = finalize(
        {"event_type": "prompt_call", "timestamp": 0.5, PROMPT: "héllo", RESPONSE: "ok"},
        capture_text=False,
    )
    assert event["timestamp"] == "1970-01-01T00:00:00.500000Z"
    assert event["prompt_chars"] == 5 and event["response_chars"] == 2
    assert event["prompt_sha256"] == hashlib.sha256("héllo".encode()).hexdigest()
    assert "prompt" not in event and "response" not in event
    assert not any(key.startswith("_") for key in event)
    assert uuid.UUID(event["event_id"])


def test_text_is_sent_only_when_the_app_opts_in() -> None:
    event = finalize({PROMPT: "hi", RESPONSE: "there"}, capture_text=True)
    assert (event["prompt"], event["response"]) == ("hi", "there")


def test_chat_messages_are_snapshot_when_tracked() -> None:
    messages = [{"role": "user", "content": "hi"}]
    snapshot = text_of(messages)
    messages.append({"role": "assistant", "content": "changed later"})
    event = finalize({PROMPT: snapshot}, capture_text=False)
    assert event["prompt_chars"] == len(b'[{"content":"hi","role":"user"}]')


def test_strings_are_cut_to_what_the_worker_accepts() -> None:
    event = finalize({"tool_name": "t" * 5000, "error_message": "e" * 9000}, capture_text=False)
    assert len(event["tool_name"]) == 1024 and len(event["error_message"]) == 4096
