"""``process_transcripts`` keeps an envelope's rows as tuples equal to the model path's rows."""

from __future__ import annotations

from typing import Any

from ingestor.errors import Location
from ingestor.models import validate_transcript_line
from ingestor.rows.columns import RowColumns
from ingestor.rows.fast import fast_transcript_values
from ingestor.rows.records import TRANSCRIPT_COLUMNS, transcript_row
from ingestor.wire import Envelope, TranscriptSource
from ingestor.worker.process import process_transcripts

SOURCE = TranscriptSource("/h/.claude/projects/-p/s-1.jsonl", "-p", 1, "2025-01-01T00:00:00Z", "h")


def _usage_line(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "assistant",
        "timestamp": "2025-01-02T03:04:05.678Z",
        "sessionId": "s-1",
        "requestId": "req",
        "version": "2.0.1",
        "message": {
            "id": message_id,
            "model": "claude-sonnet-4-20250514",
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
        **extra,
    }


def test_rows_are_tuples_of_the_model_paths_rows() -> None:
    lines = [
        _usage_line("m1"),
        {"type": "user", "timestamp": "2025-01-02T03:04:06Z", "sessionId": "s-1"},
        _usage_line("m2", session_id="other"),  # a snake-case alias: the model path's line
        _usage_line("m3", costUSD=0.25),
    ]
    assert fast_transcript_values(lines[2], SOURCE, 0, 1) is None  # so both paths are taken
    records: list[Any] = [
        {"offset": 100 * i, "length": 50, "line": line} for i, line in enumerate(lines)
    ]
    records[3]["reset_ms"] = 1_759_320_000_000
    records.append({"offset": 400, "length": 3, "error": "not JSON"})  # a dead letter
    out = process_transcripts(
        Envelope("transcript", records, SOURCE),
        Location("t", 0, 7),
        bad_line_max_bytes=4096,
    )
    rows = out.rows["transcript_lines"]
    assert isinstance(rows, RowColumns) and rows.columns == TRANSCRIPT_COLUMNS
    want = [
        transcript_row(validate_transcript_line(line), SOURCE, 100 * i, 50)
        for i, line in enumerate(lines)
    ]
    want[3]["usage_limit_reset_ms"] = 1_759_320_000_000
    assert list(rows) == want
    assert len(out.dead) == 1 and out.outcomes["usage"] == 3 and out.outcomes["no_usage"] == 1
