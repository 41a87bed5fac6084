"""``replay_rows``: a replayed message becomes exactly the rows the live worker stored for it,
or a replay would replace stored rows with different ones."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ingestor.corpus.generate import generate
from ingestor.errors import Location
from ingestor.kafka.ranges import Message
from ingestor.producer.discover import find_jsonl
from ingestor.producer.lines import parse_chunk
from ingestor.wire import Envelope, TranscriptSource, decode_message, encode_envelope
from ingestor.worker.process import process_decoded, with_dead_letter_rows
from ingestor.worker.replay import replay_rows

TOPIC = "t.ingestor.transcripts"
KINDS = {TOPIC: "transcript", "t.ingestor.events": "event"}


def _messages(root: Path) -> list[Message]:
    out = []
    for n, path in enumerate(find_jsonl([root / "projects"])):
        chunk = parse_chunk(Path(path).read_bytes(), 0, max_record_bytes=800_000)
        source = TranscriptSource(path, "p", 0, chunk.first_ts, "host")
        records = [orjson.Fragment(r) for r in chunk.records]
        value = encode_envelope("transcript", records, source)
        out.append(Message(TOPIC, 0, n, value, 0))
    return out


def _timeless(rows: dict[str, list[dict[str, object]]]) -> object:
    # A dead letter's ``dead_at`` is when it was handled: the row replaces itself whatever it is.
    return {
        t: [{k: v for k, v in r.items() if k != "dead_at"} for r in rs] for t, rs in rows.items()
    }


def test_replayed_rows_are_the_live_workers_rows(tmp_path: Path) -> None:
    generate(tmp_path, lines=400, seed=3)
    messages = _messages(tmp_path)
    replayed = replay_rows(messages, KINDS, bad_line_max_bytes=4096)  # type: ignore[arg-type]
    live: dict[str, list[dict[str, object]]] = {}  # what the live worker's agent built
    for m in messages:
        envelope = decode_message("transcript", m.value)
        where = Location(m.topic, m.partition, m.offset)
        processed = process_decoded("transcript", envelope, where, bad_line_max_bytes=4096)
        with_dead_letter_rows(processed)
        for table, rows in processed.rows.items():
            live.setdefault(table, []).extend(rows)
    assert _timeless(replayed.rows) == _timeless(live)
    assert replayed.messages == len(messages)
    assert replayed.records == len(live["transcript_lines"])
    assert replayed.dead_letters == len(live.get("dead_letters", [])) > 0


def test_a_message_that_is_no_envelope_is_one_dead_letter_at_its_offset() -> None:
    replayed = replay_rows(
        [Message("t.ingestor.events", 2, 41, b"not json", 0)],
        KINDS,  # type: ignore[arg-type]
        bad_line_max_bytes=4096,
    )
    [row] = replayed.rows["dead_letters"]
    assert (row["topic"], row["partition"], row["offset"]) == ("t.ingestor.events", 2, 41)
    assert (replayed.messages, replayed.records, replayed.dead_letters) == (1, 0, 1)


def test_a_topic_that_is_not_an_input_is_refused() -> None:
    value = encode_envelope("event", [])
    assert isinstance(decode_message("event", value), Envelope)
    with pytest.raises(KeyError):
        replay_rows([Message("other", 0, 0, value, 0)], KINDS, bad_line_max_bytes=4096)  # type: ignore[arg-type]
