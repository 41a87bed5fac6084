"""``process_message``: a Kafka message's value in, its rows and dead letters out, with no I/O.

Built on the example messages in ``topics/examples/`` (what producers are told to send).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from ingestor.errors import Location
from ingestor.kafka.topics import DEFINITIONS
from ingestor.rows.columns import RowColumns
from ingestor.wire import Envelope, Kind, encode_bundle
from ingestor.worker.dlq import fingerprint
from ingestor.worker.process import Processed, decode, process_decoded, process_message

EXAMPLES = DEFINITIONS.parent / "examples"
WHERE = Location("ingestor.transcripts", 3, 41)
FILE = "projects/-home-ada-calc/3f6c2a1e-5b7d-4c1e-9a61-0d2f4e8b7c90.jsonl"
BAD_LINE = "not valid JSON: unexpected end of data: line 1 column 28 (char 27)"


def _example(name: str) -> bytes:
    return (EXAMPLES / f"{name}.json").read_bytes()


def _process(kind: Kind, value: bytes | None) -> Processed:
    return process_message(kind, value, WHERE, bad_line_max_bytes=4096)


def _dead(out: Processed) -> list[tuple[str, str | None, str]]:
    return [(d.reason, d.field, str(d.location)) for d in out.dead]


def test_a_version_2_transcript_envelope_stores_its_lines_and_dead_letters_its_bad_record() -> None:
    out = _process("transcript", _example("transcript.columns"))

    lines = out.rows["transcript_lines"]
    assert isinstance(lines, RowColumns)
    assert lines.raw("source_offset") == [0, 235]
    user, assistant = lines
    assert (user["line_type"], user["has_usage"], user["input_tokens"]) == ("user", 0, 0)
    assert (assistant["message_id"], assistant["request_id"]) == (
        "msg_01XFDUDYJgAACzvnptvVoYEL",
        "req_011CPm1",
    )
    assert (assistant["input_tokens"], assistant["output_tokens"]) == (4, 128)
    assert (assistant["cache_read_tokens"], assistant["cache_creation_5m"]) == (15360, 1024)
    assert assistant["source_file"] == FILE and assistant["dedup_scope"] == "ada-laptop"
    # The record (the envelope's item 0; its lines are items 1 and 2) is dead-lettered at its
    # place in the file, with no text of it.
    assert _dead(out) == [(BAD_LINE, "line", f"ingestor.transcripts[3]@41#0 {FILE}:1108")]
    assert out.dead[0].raw_length == 27 and out.dead[0].raw_sha256.startswith("f46aff4b")
    assert out.outcomes == {"usage": 1, "no_usage": 1, "dead_letter": 1}
    assert out.valid == 2
    assert "dead_letters" not in out.rows  # added once, before storing (with_dead_letter_rows)


def test_version_1_and_2_of_one_file_make_the_same_rows() -> None:
    columns = _process("transcript", _example("transcript.columns"))
    records = _process("transcript", _example("transcript.envelope"))

    assert list(records.rows["transcript_lines"]) == list(columns.rows["transcript_lines"])
    # In a version 1 envelope the bad line is the third item, in file order.
    assert _dead(records) == [(BAD_LINE, "line", f"ingestor.transcripts[3]@41#2 {FILE}:1108")]


def test_a_bad_line_in_a_good_envelope_is_dead_lettered_alone() -> None:
    body = orjson.loads(_example("transcript.columns"))
    body["lines"]["output"][1] = -1

    out = _process("transcript", orjson.dumps(body))

    assert out.rows["transcript_lines"].raw("source_offset") == [0]
    assert _dead(out) == [
        ("must be an integer in [0, 9223372036854775808)", "lines.output", f"{WHERE}#2 {FILE}:235"),
        (BAD_LINE, "line", f"{WHERE}#0 {FILE}:1108"),
    ]
    assert out.dead[0].raw_length == 872 and out.dead[0].source_length == 873
    assert out.outcomes == Counter(no_usage=1, dead_letter=2)  # 'usage' 0 compares equal


@pytest.mark.parametrize(
    ("value", "reason", "field", "shape"),
    [
        (b"not json", "not valid JSON: invalid literal", None, ""),
        (None, "empty message", None, ""),
        (b"[1]", "expected a JSON object, got list", None, ""),
        (b'{"v": 9, "records": []}', "unsupported envelope version 9", "v", '"records":"<array>"'),
    ],
)
def test_a_message_that_is_no_envelope_is_one_dead_letter(
    value: bytes | None, reason: str, field: str | None, shape: str
) -> None:
    out = _process("event", value)

    assert out.rows == {} and out.valid == 0 and not out.outcomes
    [dead] = out.dead
    assert (dead.kind, dead.field, dead.location) == ("event", field, WHERE)
    assert dead.reason.startswith(reason)
    assert shape in dead.raw  # the structure of an object, never its text
    assert (dead.raw_sha256, dead.raw_length) == fingerprint(value or b"")


def test_a_transcript_envelope_without_a_source_is_no_envelope() -> None:
    body = orjson.loads(_example("transcript.columns"))
    del body["source"]

    out = _process("transcript", orjson.dumps(body))

    assert out.rows == {}
    assert _dead(out) == [("must be an object", "source", str(WHERE))]


@pytest.mark.parametrize(
    ("name", "kind", "tables", "ids"),
    [
        ("event.envelope", "event", {"events": 2, "tool_calls": 1}, ["evt_0001", "evt_0002"]),
        ("event.record", "event", {"events": 1}, ["evt_0003"]),
        ("ledger.envelope", "ledger", {"token_usage_ledger": 2}, ["req_9001", "req_9002"]),
        ("ledger.record", "ledger", {"token_usage_ledger": 1}, ["req_9003"]),
    ],
)
def test_events_and_ledger_entries_become_their_rows(
    name: str, kind: Kind, tables: dict[str, int], ids: list[str]
) -> None:
    out = _process(kind, _example(name))

    assert {table: len(rows) for table, rows in out.rows.items()} == tables
    table, key = ("events", "event_id") if kind == "event" else ("token_usage_ledger", "request_id")
    assert [row[key] for row in out.rows[table]] == ids
    assert out.outcomes == {"stored": len(ids)} and out.valid == len(ids)  # rows of the input
    assert out.dead == []


def test_a_bad_event_is_dead_lettered_at_its_index_and_the_others_stored() -> None:
    body = orjson.loads(_example("event.envelope"))
    body["records"][0]["tokens_input"] = -5

    out = _process("event", orjson.dumps(body))

    assert [row["event_id"] for row in out.rows["events"]] == ["evt_0002"]
    [(reason, field, where)] = _dead(out)
    assert (field, where) == ("tokens_input", f"{WHERE}#0")
    assert out.outcomes == {"stored": 1, "dead_letter": 1}


def test_a_ledger_envelope_on_the_event_topic_is_no_envelope() -> None:
    out = _process("event", _example("ledger.envelope"))

    assert out.rows == {}
    assert _dead(out) == [("a 'ledger' envelope on the event topic", "kind", str(WHERE))]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("transcript.columns", "transcript"),
        ("transcript.record", "transcript"),
        ("event.envelope", "event"),
        ("ledger.envelope", "ledger"),
    ],
)
def test_the_agents_two_steps_are_process_message(name: str, kind: Kind) -> None:
    """The agent decodes, meets a transcript envelope's scope, then processes: the same rows."""
    value = _example(name)

    [decoded] = decode(kind, value, WHERE, bad_line_max_bytes=4096)

    assert isinstance(decoded, Envelope)
    apart = process_decoded(kind, decoded, WHERE, bad_line_max_bytes=4096)
    whole = _process(kind, value)
    assert _rows(apart) == _rows(whole) and _dead(apart) == _dead(whole)
    assert apart.outcomes == whole.outcomes


def test_decode_hands_back_what_an_undecodable_message_made() -> None:
    [decoded] = decode("ledger", b"{", WHERE, bad_line_max_bytes=4096)

    assert isinstance(decoded, Processed)
    assert _dead(decoded) == _dead(_process("ledger", b"{"))


def _rows(out: Processed) -> dict[str, list[Any]]:
    return {table: list(rows) for table, rows in out.rows.items()}


def test_a_bundle_is_its_envelopes_in_order() -> None:
    """A version 3 message: each envelope processed as if it came alone, in order; an item that
    is no envelope is its own dead letter (at its index) and the others stand."""
    columns = orjson.dumps(orjson.loads(_example("transcript.columns")))
    envelope = orjson.dumps(orjson.loads(_example("transcript.envelope")))
    bundle = encode_bundle([columns, envelope, b'{"v":1,"records":"no"}', columns])
    out = _process("transcript", bundle)

    parts = [_process("transcript", value) for value in (columns, envelope, columns)]
    lines = out.rows["transcript_lines"]
    assert isinstance(lines, RowColumns)
    assert list(lines) == [row for part in parts for row in part.rows["transcript_lines"]]
    dead = _dead(out)
    assert dead[: len(parts[0].dead) + len(parts[1].dead)] == _dead(parts[0]) + _dead(parts[1])
    assert ("must be a list", "records", "ingestor.transcripts[3]@41#2") in dead
    assert len(dead) == 1 + sum(len(part.dead) for part in parts)
    assert out.outcomes == sum((part.outcomes for part in parts), Counter())


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("transcript", b'{"v":3,"kind":"transcript","envelopes":[]}', "must be a non-empty list"),
        ("transcript", b'{"v":2,"kind":"transcript","envelopes":[{}]}', "must be version 3"),
        ("event", b'{"v":3,"kind":"event","envelopes":[{"v":1,"records":[]}]}', "version 3"),
        ("transcript", b'{"v":3,"kind":"event","envelopes":[{"v":1,"records":[]}]}', "kind"),
    ],
)
def test_a_message_that_is_no_bundle_is_one_dead_letter(
    kind: Kind, value: bytes, reason: str
) -> None:
    out = _process(kind, value)
    assert not out.rows and len(out.dead) == 1 and reason in out.dead[0].reason


def test_an_item_of_a_bundle_that_is_a_bundle_is_a_dead_letter() -> None:
    inner = b'{"v":3,"kind":"transcript","envelopes":[]}'
    out = _process("transcript", encode_bundle([inner, inner]))
    assert [d.location.index for d in out.dead] == [0, 1]
    assert all("must be an envelope" in d.reason for d in out.dead)
