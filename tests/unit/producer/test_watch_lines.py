from __future__ import annotations

import orjson
import pytest
from watch_helpers import jl, usage_line

from ingestor.producer.lines import (
    BLANK,
    first_timestamp,
    long_line_chunk,
    pack,
    parse_chunk,
    split_lines,
)
from ingestor.redact import sha256_hex


def parse(data: bytes, offset: int = 0, **kw: int) -> tuple[list[dict[str, object]], int]:
    kw.setdefault("max_record_bytes", 100_000)
    chunk = parse_chunk(data, offset, **kw)
    return [orjson.loads(r) for r in chunk.records], chunk.end


def test_split_keeps_the_partial_tail_out() -> None:
    assert split_lines(b'{"a":1}\n{"b":2}\n{"c":', 100) == ([b'{"a":1}', b'{"b":2}'], 116)
    assert split_lines(b'{"c":', 100) == ([], 100)
    assert split_lines(b"", 0) == ([], 0)


def test_offset_plus_length_is_the_next_line_start() -> None:
    data = jl({"type": "a"}, {"type": "bb"}) + b'{"type": "partial'
    records, end = parse(data, offset=1000)
    first, second = records
    assert first["offset"] == 1000
    assert first["offset"] + first["length"] == second["offset"]  # type: ignore[operator]
    assert second["offset"] + second["length"] == end  # type: ignore[operator]
    assert end == 1000 + data.index(b'{"type": "partial')


def test_blank_lines_are_accounted_as_bad_lines() -> None:
    data = b'\n  \n{"type":"a"}\r\n\n'
    records, end = parse(data, offset=0)
    assert [r["offset"] for r in records] == [0, 1, 4, 18]
    assert [r.get("error") for r in records] == [BLANK, BLANK, None, BLANK]
    assert records[2]["line"] == {"type": "a"}  # CRLF is JSON whitespace
    assert end == len(data)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"type": "assistant", "trunc', "not valid JSON"),
        (b"[1, 2]", "not a JSON object: array"),
        (b"42", "not a JSON object: number"),
        (b"null", "not a JSON object: null"),
        (b'"text"', "not a JSON object: string"),
    ],
)
def test_bad_lines_travel_with_reason_and_offset(line: bytes, reason: str) -> None:
    records, _ = parse(jl({"type": "a"}) + line + b"\n")
    bad = records[1]
    assert bad["offset"] == 13 and bad["length"] == len(line) + 1
    assert bad["sha256"] == sha256_hex(line)
    assert str(bad["error"]).startswith(reason)
    assert set(bad) == {"offset", "length", "error", "sha256"}  # no text of the line at all


@pytest.mark.parametrize(
    "line",
    [
        b'{"type": "user", "message": {"content": "MARKER-7f3a truncat',
        b"MARKER-7f3a plain prose, not JSON",
        b"\xff\xfe MARKER-7f3a not json",
        b'["MARKER-7f3a"]',
        b'"MARKER-7f3a"',
    ],
)
def test_a_bad_line_that_is_not_an_object_keeps_no_text(line: bytes) -> None:
    chunk = parse_chunk(line + b"\n", 0, max_record_bytes=10**6)
    assert chunk.bad_lines == 1
    assert b"MARKER" not in chunk.records[0]
    record = orjson.loads(chunk.records[0])
    assert record["length"] == len(line) + 1 and record["sha256"] == sha256_hex(line)


def test_no_conversation_text_survives() -> None:
    user = {
        "type": "user",
        "timestamp": "2025-01-01T00:00:00Z",
        "message": {"role": "user", "content": [{"type": "tool_result", "content": "SECRET"}]},
        "toolUseResult": {"stdout": "SECRET"},
        "summary": "SECRET",
    }
    chunk = parse_chunk(jl(usage_line(1), user), 0, max_record_bytes=10**6)
    blob = b"".join(chunk.records)
    assert b"SECRET" not in blob
    assistant = orjson.loads(chunk.records[0])["line"]
    assert assistant["message"]["tool_uses"] == ["Bash"]
    assert assistant["message"]["usage"] == {
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert assistant["requestId"] == "req_1"


def test_first_timestamp_is_the_first_line_that_has_one() -> None:
    lines = [
        {"type": "summary"},
        {"type": "user", "timestamp": "not a date"},
        {"type": "user", "timestamp": "2025-03-02T00:00:00Z"},
        {"type": "user", "timestamp": "2025-03-01T00:00:00Z"},
    ]
    data = jl(*lines)
    chunk = parse_chunk(data, 0, max_record_bytes=10**6)
    assert chunk.first_ts == "2025-03-02T00:00:00Z"
    assert first_timestamp(data.splitlines()) == "2025-03-02T00:00:00Z"
    assert first_timestamp([b"", b"junk", b'{"type":"x"}']) is None


def test_a_stripped_line_too_big_for_an_envelope_becomes_a_bad_line() -> None:
    huge = {"type": "user", "cwd": "/MARKER-7f3a" + "d" * 5000}
    chunk = parse_chunk(jl(huge), 0, max_record_bytes=1000)
    record = orjson.loads(chunk.records[0])
    assert record["error"] == "stripped line larger than 1000 bytes"
    assert record["shape"] == {"type": "user", "cwd": "<string>"}
    assert chunk.bad_lines == 1 and b"MARKER" not in chunk.records[0]


def test_a_huge_usage_line_stays_a_small_counted_record() -> None:
    line = usage_line(7)
    line["message"]["content"] = [  # type: ignore[index]
        {"type": "text", "text": "MARKER-7f3a " * 200_000},
        *({"type": "tool_use", "name": f"T{i}" + "n" * 500, "input": {}} for i in range(5000)),
    ]
    line["cwd"] = "/MARKER-7f3a/" + "d" * 2_000_000
    line["requestId"] = "req_" + "r" * 5000
    chunk = parse_chunk(jl(line), 0, max_record_bytes=900_000)
    assert chunk.bad_lines == 0 and len(chunk.records[0]) < 200_000
    kept = orjson.loads(chunk.records[0])["line"]
    assert kept["message"]["usage"]["input_tokens"] == 7
    assert len(kept["message"]["tool_uses"]) == 256
    assert all(len(name) <= 128 for name in kept["message"]["tool_uses"])
    assert len(kept["cwd"]) == 1024 and kept["cwd"].startswith("/MARKER-7f3a/")
    # A cut id still tells distinct ids apart: it ends in the hash of the whole.
    assert kept["requestId"].endswith(sha256_hex(line["requestId"].encode()))  # type: ignore[union-attr]


def test_an_overlong_line_is_a_bad_record_of_its_length_and_hash() -> None:
    chunk = long_line_chunk(7, 300, "ab" * 32, 256)
    assert chunk.start == 7 and chunk.end == 7 + 301 and chunk.bad_lines == 1
    record = orjson.loads(chunk.records[0])
    assert record == {
        "offset": 7,
        "length": 301,
        "error": "line longer than 256 bytes (line_too_long)",
        "sha256": "ab" * 32,
    }


def test_pack_respects_record_and_byte_limits_in_order() -> None:
    assert pack([10] * 7, overhead=50, max_records=3, max_bytes=10_000) == [3, 6, 7]
    # 50 + 3 * 11 = 83 fits 90; a fourth record would not.
    assert pack([10] * 7, overhead=50, max_records=100, max_bytes=90) == [3, 6, 7]
    assert pack([10, 500, 10], overhead=50, max_records=100, max_bytes=100) == [1, 2, 3]
    assert pack([], overhead=50, max_records=3, max_bytes=100) == []
