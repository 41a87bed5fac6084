from __future__ import annotations

from decimal import Decimal
from typing import Any

from ingestor.sdk._envelopes import build_messages
from ingestor.wire import decode_message, encode_envelope


def events(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"event_id": f"e{i}", "project_id": "p", "n": i, **extra} for i in range(n)]


def test_an_envelope_reads_as_the_wire_format_writes_it() -> None:
    records = events(3, cost_usd=Decimal("0.1"), odd=object.__name__)
    [message], too_large = build_messages(records, max_records=500, max_bytes=900_000)
    assert too_large == 0 and message.key == b"p" and message.records == 3
    assert message.value == encode_envelope("event", records)
    assert list(decode_message("event", message.value).records) == [
        {**r, "cost_usd": "0.1"} for r in records
    ]


def test_envelopes_hold_one_key_in_order_and_respect_both_bounds() -> None:
    records = events(25) + events(5, session_id="s")
    messages, _ = build_messages(records, max_records=10, max_bytes=900_000)
    assert [(m.key, m.records) for m in messages] == [
        (b"p", 10), (b"p", 10), (b"p", 5), (b"s", 5)
    ]  # fmt: skip
    ns = [
        r["n"] for m in messages if m.key == b"p" for r in decode_message("event", m.value).records
    ]
    assert ns == list(range(25))
    small, _ = build_messages(events(25), max_records=500, max_bytes=400)
    assert all(len(m.value) <= 400 for m in small) and sum(m.records for m in small) == 25


def test_a_record_too_large_for_any_envelope_is_counted_not_sent() -> None:
    messages, too_large = build_messages(
        [{"project_id": "p", "x": "y" * 2000}, *events(2)], max_records=500, max_bytes=1000
    )
    assert too_large == 1 and sum(m.records for m in messages) == 2


def test_values_json_cannot_hold_are_sent_as_text() -> None:
    [message], _ = build_messages(
        [{"project_id": "p", "tags": {"b", "a"}, "obj": object()}], max_records=5, max_bytes=10_000
    )
    [record] = decode_message("event", message.value).records
    assert record["tags"] == ["a", "b"] and record["obj"].startswith("<object")
