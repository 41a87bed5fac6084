"""A dead letter keeps no text of its input, whatever the producer sent (issue 7, row 5)."""

from __future__ import annotations

from typing import Any

import orjson

from ingestor.errors import InvalidEnvelope, Location
from ingestor.producer.lines import parse_chunk
from ingestor.redact import sha256_hex
from ingestor.rows.records import dead_letter_row
from ingestor.wire import Envelope, TranscriptSource
from ingestor.worker.dlq import DeadLetter
from ingestor.worker.process import process_events, process_transcripts

MARK = "MARKER-7f3a"
WHERE = Location("ingestor.transcripts", 0, 5)


def transcripts(*records: Any) -> list[DeadLetter]:
    source = TranscriptSource("/p/-r/s.jsonl", "-r", 0, None, "host")
    envelope = Envelope("transcript", records, source)
    return process_transcripts(envelope, WHERE, bad_line_max_bytes=4096).dead


def at_rest(dead: DeadLetter) -> str:
    return dead.message().decode() + repr(dead_letter_row(dead))


def test_watcher_bad_lines_keep_hash_length_and_structure_only() -> None:
    lines = [
        b'{"type": "user", "message": {"content": "' + MARK.encode() + b" trunc",
        MARK.encode() + b" plain text",
        orjson.dumps(
            {
                "type": "assistant",
                "timestamp": "2025-01-01T00:00:00Z",
                "version": "not semver",
                "message": {"id": "m", "content": MARK, "usage": {"input_tokens": 1}},
            }
        ),
    ]
    chunk = parse_chunk(b"\n".join(lines) + b"\n", 0, max_record_bytes=10**6)
    dead = transcripts(*(orjson.loads(r) for r in chunk.records))
    assert len(dead) == 3
    for letter, line in zip(dead, lines, strict=True):
        assert MARK not in at_rest(letter)
        assert letter.raw_sha256 == sha256_hex(line) and letter.raw_length == len(line)
    assert dead[0].raw == dead[1].raw == ""
    skipped = orjson.loads(dead[2].raw)
    assert skipped["message"] == {"id": "m", "content": "<string>", "usage": {"input_tokens": 1}}
    assert skipped["version"] == "not semver"  # a usage field: kept


def test_text_sent_by_an_older_or_hostile_producer_is_not_kept() -> None:
    dead = transcripts(
        {"offset": 0, "length": 20, "raw": f"{MARK} text", "error": "not valid JSON"},
        {"offset": 20, "length": 30, "shape": {"summary": MARK, "x": [MARK]}, "error": "e"},
        {"offset": 50, "length": 40, "line": {"type": 5, "cwd": MARK, "summary": MARK}},
    )
    assert len(dead) == 3
    assert all(MARK not in at_rest(d) for d in dead)
    assert orjson.loads(dead[1].raw) == {"summary": "<string>", "x": "<array>"}
    assert orjson.loads(dead[2].raw) == {"type": 5, "cwd": "<string>", "summary": "<string>"}
    assert dead[2].raw_sha256 == "" and dead[2].raw_length == 39  # bytes never seen: no hash


def test_event_dead_letters_keep_structure_never_free_text() -> None:
    bad = {
        "event_type": "prompt_call",
        "event_id": "e1",
        "timestamp": "not a time",
        "prompt": MARK,
        "response": MARK,
        "error_message": MARK,
    }
    unknown = {"event_type": "no_such_type", "event_id": "e2", "prompt": MARK}
    out = process_events(Envelope("event", [bad, unknown]), WHERE, bad_line_max_bytes=4096)
    assert len(out.dead) == 2
    assert all(MARK not in at_rest(d) for d in out.dead)
    shape = orjson.loads(out.dead[0].raw)
    assert shape["event_id"] == "e1" and shape["prompt"] == "<string>"
    assert out.dead[0].raw_sha256 == sha256_hex(orjson.dumps(bad))
    assert "no_such_type" not in out.dead[1].reason  # pydantic quotes the tag; we do not


def test_an_undecodable_message_keeps_its_hash_only() -> None:
    data = f"{MARK} is not an envelope".encode()
    dead = DeadLetter.of_input("event", InvalidEnvelope("bad").at(WHERE), data, max_bytes=99)
    assert dead.raw == "" and dead.raw_sha256 == sha256_hex(data) and dead.raw_length == len(data)
    assert MARK not in at_rest(dead)
