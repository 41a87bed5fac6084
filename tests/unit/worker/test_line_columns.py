"""Lines sent as columns (wire version 2) are stored exactly as the same lines sent as records,
and every value of a column is checked: a bad one dead-letters its line alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestor.corpus.generate import generate
from ingestor.errors import InvalidEnvelope, Location
from ingestor.producer.discover import find_jsonl
from ingestor.producer.lines import column_row, envelopes, line_row, parse_chunk
from ingestor.producer.usage import usage_record
from ingestor.rows.columns import RowColumns
from ingestor.rows.records import TRANSCRIPT_COLUMNS, session_of
from ingestor.wire import LINE_COLUMNS, TranscriptSource, decode_message, encode_envelope
from ingestor.worker.dlq import DeadLetter
from ingestor.worker.process import process_decoded

WHERE = Location("transcripts", 0, 5)
SOURCE = TranscriptSource("/p/-proj/s-1.jsonl", "-proj", 3, "2025-09-01T00:00:00.000Z", "host")
MAX_RECORD = 890_000


def _odd_lines() -> list[bytes]:
    """Lines beyond the generator's: each a shape the columns must carry, or leave to records."""
    usage = {"input_tokens": 3, "output_tokens": 5, "cache_creation_input_tokens": 7,
             "cache_read_input_tokens": 11}  # fmt: skip
    message = {"id": "m", "model": "claude-sonnet-4-5-20250929", "usage": usage}
    base = {"type": "assistant", "timestamp": "2025-09-02T10:00:00.123Z", "sessionId": "s",
            "uuid": "u", "requestId": "r", "version": "2.0.1", "cwd": "/w",
            "message": message}  # fmt: skip
    odd: list[dict[str, Any]] = [
        {**base, "costUSD": 0.1},
        {**base, "costUSD": 3},
        {**base, "costUSD": 1e-07},
        {**base, "isSidechain": True, "isApiErrorMessage": False},
        {**base, "message": {**base["message"], "model": "no-such-model"}},
        {
            **base,
            "message": {
                **base["message"],
                "usage": {
                    **usage,
                    "speed": "fast",
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": 2,
                        "ephemeral_1h_input_tokens": 5,
                    },
                },
            },
        },  # fmt: skip
        {**base, "message": {**base["message"], "usage": {**usage, "service_tier": "priority"}}},
        {**base, "cwd": "é/ü/\u2028/\x01" * 40, "uuid": "ü" * 3},
        {**base, "cwd": "x" * 200_000},  # too long for a column row: goes as a record
        {**base, "timestamp": "2025-09-02T10:00:00.123456+05:30"},
        {
            "type": "user",
            "timestamp": "2025-09-02T10:00:00.5+01:00",
            "uuid": "v",
            "parentUuid": None,
            "message": {"role": "user", "content": "hi"},
        },  # fmt: skip
        {"type": "summary", "summary": "text", "leafUuid": "x"},
        {"type": "user", "timestamp": "1969-12-31T23:59:59.999Z", "sessionId": 5},
        {"type": "assistant", "timestamp": "2025-09-02T10:00:00Z", "costUSD": 2.5},
    ]
    return [orjson.dumps(line) for line in odd]


def _tree(tmp_path: Path) -> list[Path]:
    generate(tmp_path, lines=2_000, seed=7, odd_rate=0.2, projects=2)
    files = [Path(p) for p in find_jsonl([tmp_path / "projects"])]
    extra = tmp_path / "projects" / "-odd" / "odd-1.jsonl"
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b"\n".join(_odd_lines()) + b"\n\n{not json\n")
    return [*files, extra]


def _stored(files: list[Path], columns: bool) -> tuple[RowColumns, list[DeadLetter], int]:
    rows = RowColumns(TRANSCRIPT_COLUMNS, times=("file_first_ts", "timestamp"))
    dead: list[DeadLetter] = []
    in_columns = 0
    for path in files:
        chunk = parse_chunk(path.read_bytes(), 0, max_record_bytes=MAX_RECORD, columns=columns)
        source = TranscriptSource(str(path), path.parent.name, 1, chunk.first_ts, "host")
        for _, value in envelopes(chunk.records, source, max_records=40, max_bytes=900_000):
            envelope = decode_message("transcript", value)
            in_columns += len(envelope.lines["offset"]) if envelope.lines else 0
            out = process_decoded("transcript", envelope, WHERE, bad_line_max_bytes=65_536)
            rows.extend(out.rows.get("transcript_lines", []))
            dead.extend(out.dead)
    return rows, dead, in_columns


def _by_line(rows: RowColumns) -> list[tuple[Any, ...]]:
    values = list(zip(*rows.data, strict=True))
    file, offset = (
        TRANSCRIPT_COLUMNS.index("source_file"),
        TRANSCRIPT_COLUMNS.index("source_offset"),
    )
    # Decimal equality ignores the exponent and the type of 0/1 flags: compare them spelled out.
    return sorted(
        (tuple((type(v).__name__, str(v)) for v in row) for row in values),
        key=lambda row: (row[file], int(row[offset][1])),
    )


def test_columns_store_what_records_store(tmp_path: Path) -> None:
    files = _tree(tmp_path)
    by_records, dead_records, none = _stored(files, columns=False)
    by_columns, dead_columns, in_columns = _stored(files, columns=True)
    assert none == 0 and in_columns > 0.9 * len(by_records)  # the columns carried most lines
    assert len(by_columns) == len(by_records)
    assert _by_line(by_columns) == _by_line(by_records)
    assert sorted((d.location.file_offset, d.reason, d.field) for d in dead_columns) == sorted(
        (d.location.file_offset, d.reason, d.field) for d in dead_records
    )
    assert len(dead_records) > 10


def test_a_usage_lines_columns_are_its_records_columns(tmp_path: Path) -> None:
    # The watcher builds a usage line's columns from what ccusage read (``usage_columns``), not
    # from its record: both must give the same values.
    seen = 0
    for path in _tree(tmp_path):
        offset = 0
        for line in path.read_bytes().split(b"\n")[:-1]:
            length = len(line) + 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if type(obj) is dict:
                record, skipped = usage_record(line, obj, offset, length)
                row = line_row(line, obj, offset, length, MAX_RECORD)
                want = None if skipped is not None else column_row(record, MAX_RECORD)
                assert row == want and [type(v) for v in row or ()] == [
                    type(v) for v in want or ()
                ], line
                seen += row is not None and row[LINE_COLUMNS.index("usage")]
            offset += length
    assert seen > 500


def _lines(n: int = 3) -> dict[str, list[Any]]:
    row = {"offset": 0, "length": 10, "type": "assistant", "session": "s", "uuid": "u",
           "parent": "", "request": "r", "message": "m", "ts": 1_756_800_000_123,
           "sidechain": False, "api_error": False, "model": "claude-sonnet-4-5-20250929",
           "usage": True, "input": 1, "output": 2, "cache_read": 3, "cache_5m": 4,
           "cache_1h": 0, "tier": "", "speed": "", "cost": None, "reset": 0, "tools": ["Bash"],
           "cwd": "/w", "version": "2.0.1"}  # fmt: skip
    assert tuple(row) == LINE_COLUMNS
    lines = {name: [value] * n for name, value in row.items()}
    lines["offset"] = [10 * i for i in range(n)]
    return lines


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("offset", -1, "must be an integer in [0, 18446744073709551616)"),
        ("length", 2**32, "must be an integer in [0, 4294967296)"),
        ("input", 2**63, "must be an integer in [0, 9223372036854775808)"),
        ("output", 1.0, "must be an integer in [0, 9223372036854775808)"),
        ("cache_read", True, "must be an integer in [0, 9223372036854775808)"),
        ("ts", "2025-01-01", "must be an integer in [-9223372036854775808, 9223372036854775808)"),
        ("sidechain", 1, "must be a boolean"),
        ("model", None, "must be a string"),
        ("speed", "turbo", "must be '', 'standard' or 'fast'"),
        ("tools", ["a", 1], "must be a list of strings"),
        ("cost", 0.5, "must be decimal text of a finite number below 2**63, or null"),
        ("cost", "NaN", "must be decimal text of a finite number below 2**63, or null"),
        ("cost", "1e30", "must be decimal text of a finite number below 2**63, or null"),
    ],
)
def test_a_bad_value_dead_letters_its_line_alone(column: str, value: Any, reason: str) -> None:
    lines = _lines()
    lines[column][1] = value
    body = encode_envelope("transcript", [{"offset": 99, "length": 2, "error": "x"}], SOURCE, lines)
    out = process_decoded(
        "transcript", decode_message("transcript", body), WHERE, bad_line_max_bytes=4096
    )
    stored = out.rows["transcript_lines"]
    assert stored.raw("source_offset") == [0, 20]
    assert [(d.reason, d.field) for d in out.dead] == [(reason, f"lines.{column}"), ("x", "line")]
    bad = out.dead[0].location
    assert (bad.index, bad.file, bad.file_offset) == (
        2,
        SOURCE.file,
        10 if column != "offset" else -1,
    )
    assert out.outcomes == {"usage": 2, "dead_letter": 2}


def test_a_line_without_usage_carries_no_tokens() -> None:
    lines = _lines(2)
    lines["usage"] = [False, False]
    lines["tools"] = [[], []]
    for name in ("input", "output", "cache_read", "cache_5m"):
        lines[name] = [0, 0]
    lines["output"][1] = 4
    body = encode_envelope("transcript", [], SOURCE, lines)
    out = process_decoded(
        "transcript", decode_message("transcript", body), WHERE, bad_line_max_bytes=4096
    )
    assert [(d.reason, d.field) for d in out.dead] == [
        ("must be 0 or '' on a line without usage", "lines.output")
    ]
    row = out.rows["transcript_lines"][0]
    assert (row["has_usage"], row["cost_calculated"]) == (0, 0)
    assert row["session_id"] == session_of(SOURCE.file)


def test_costs_and_file_values_of_a_usage_line() -> None:
    lines = _lines(2)
    lines["cost"] = [None, "0.25"]
    body = encode_envelope("transcript", [], SOURCE, lines)
    out = process_decoded(
        "transcript", decode_message("transcript", body), WHERE, bad_line_max_bytes=4096
    )
    first, second = out.rows["transcript_lines"]
    assert first["cost_usd"] == first["cost_calculated"] > 0 and first["has_cost_usd"] == 0
    assert str(second["cost_usd"]) == "0.25" and second["has_cost_usd"] == 1
    assert second["cost_calculated"] == first["cost_calculated"]
    assert (first["source_generation"], first["project"], first["dedup_scope"]) == (
        3,
        "-proj",
        "host",
    )
    assert first["tool_uses"] == ("Bash",) and first["cache_creation_tokens"] == 4


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "must be an object"),
        ({name: [] for name in LINE_COLUMNS[1:]}, "lacks columns ['offset']"),
        ({**{name: [] for name in LINE_COLUMNS}, "extra": []}, "has columns this worker"),
        ({**{name: [] for name in LINE_COLUMNS}, "ts": {}}, "must be a list"),
        ({**{name: [] for name in LINE_COLUMNS}, "ts": [1]}, "columns of unequal length"),
    ],
)
def test_a_malformed_lines_object_is_an_invalid_envelope(lines: Any, message: str) -> None:
    body = orjson.dumps({"v": 2, "kind": "transcript", "records": [], "source": SOURCE.as_dict(),
                         "lines": lines})  # fmt: skip
    with pytest.raises(InvalidEnvelope, match=message.replace("[", r"\[")):
        decode_message("transcript", body)


def test_lines_travel_only_on_the_transcript_topic() -> None:
    body = encode_envelope("event", [], None, _lines(1))
    with pytest.raises(InvalidEnvelope, match="unsupported envelope version 2"):
        decode_message("event", body)


def test_an_envelope_over_the_byte_limit_is_halved() -> None:
    lines = _lines(8)
    lines["cwd"] = ["/w" * 400] * 8  # rows larger than the packing takes them to be
    rows = list(zip(*(lines[c] for c in LINE_COLUMNS), strict=True))
    whole = encode_envelope("transcript", [], SOURCE, lines)
    limit = len(whole) // 3
    sent = envelopes(rows, SOURCE, max_records=8, max_bytes=limit)
    assert len(sent) > 3 and all(len(value) <= limit for _, value in sent)
    assert [stop for stop, _ in sent][-1] == 8
    offsets = [decode_message("transcript", v).lines["offset"] for _, v in sent]  # type: ignore[index]
    assert sum(offsets, []) == lines["offset"]
