"""The resume point a batch vouches for (``clickhouse/positions.py``)."""

from __future__ import annotations

from ingestor.clickhouse.positions import batch_positions


def _line(file: str, gen: int, offset: int, length: int) -> dict[str, object]:
    return {
        "source_file": file,
        "source_generation": gen,
        "source_offset": offset,
        "source_length": length,
    }


def test_each_file_ends_at_its_furthest_line_stored_or_dead() -> None:
    rows = {
        "transcript_lines": [_line("a", 0, 0, 10), _line("a", 0, 10, 5), _line("b", 1, 0, 7)],
        "dead_letters": [
            {**_line("a", 0, 15, 3), "kind": "transcript"},
            {**_line("", 0, 0, 0), "kind": "event"},  # not in a file: no position
        ],
        "events": [{"event_id": "x"}],
    }
    got = {
        (r["source_file"], r["source_generation"]): r["end_offset"] for r in batch_positions(rows)
    }
    assert got == {("a", 0): 18, ("b", 1): 7}


def test_generations_are_separate_and_a_batch_without_files_has_none() -> None:
    rows = {"transcript_lines": [_line("a", 0, 0, 100), _line("a", 1, 0, 4)]}
    got = {
        (r["source_file"], r["source_generation"]): r["end_offset"] for r in batch_positions(rows)
    }
    assert got == {("a", 0): 100, ("a", 1): 4}
    assert batch_positions({"events": [{"event_id": "x"}]}) == []


def test_an_envelope_without_records_announces_its_generation_at_offset_0() -> None:
    from ingestor.errors import Location
    from ingestor.wire import Envelope, TranscriptSource
    from ingestor.worker.process import process_transcripts

    tomb = Envelope("transcript", [], TranscriptSource("/p/-r/s.jsonl", "-r", 3, None, "host"))
    processed = process_transcripts(tomb, Location("t", 0, 7), bad_line_max_bytes=100)
    assert processed.rows == {
        "file_positions": [
            {"source_file": "/p/-r/s.jsonl", "source_generation": 3, "end_offset": 0}
        ]
    }
    line = {"source_file": "/p/-r/s.jsonl", "source_generation": 3, "source_offset": 0}
    rows = {**processed.rows, "transcript_lines": [{**line, "source_length": 10}]}
    assert batch_positions(rows) == [
        {"source_file": "/p/-r/s.jsonl", "source_generation": 3, "end_offset": 10}
    ]
