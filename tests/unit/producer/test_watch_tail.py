from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
import pytest
from watch_helpers import jl, usage_line

from ingestor.producer.checkpoint import FilePosition
from ingestor.producer.lines import ParsedChunk
from ingestor.producer.tail import Tail


def make_tail(path: Path, position: FilePosition | None = None, **kw: int) -> Tail:
    return Tail(str(path), "proj", position, max_record_bytes=10**6, **kw)


def offsets(chunk: ParsedChunk | None) -> list[int]:
    assert chunk is not None
    return [orjson.loads(r)["offset"] for r in chunk.records]


def test_reads_complete_lines_and_waits_for_a_partial_one(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    first = jl(usage_line(1))
    path.write_bytes(first + b'{"type": "user", "ti')
    tail = make_tail(path)
    chunk = tail.read()
    assert offsets(chunk) == [0]
    assert chunk is not None and chunk.end == len(first)
    assert tail.position.offset == 0  # reading does not commit
    tail.commit(chunk.end)
    assert tail.read() is None
    assert not tail.changed()  # nothing new since the partial line was seen

    with path.open("ab") as handle:
        handle.write(b'mestamp": "2025-01-01T00:00:00Z"}\n')
    assert tail.changed()
    assert offsets(tail.read()) == [len(first)]


def test_truncation_starts_a_new_generation_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(jl(usage_line(1), usage_line(2)))
    tail = make_tail(path)
    chunk = tail.read()
    assert chunk is not None
    tail.commit(chunk.end)
    ino = os.stat(path).st_ino
    with path.open("r+b") as handle:
        handle.truncate(0)
        handle.write(jl(usage_line(3, ts="2025-05-05T00:00:00Z")))
    assert os.stat(path).st_ino == ino
    assert offsets(tail.read()) == [0]
    assert tail.position.generation == 1
    assert tail.source.first_ts == "2025-05-05T00:00:00Z"


def test_replacement_starts_a_new_generation(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(jl(usage_line(1)))
    tail = make_tail(path)
    chunk = tail.read()
    assert chunk is not None
    tail.commit(chunk.end)
    new = tmp_path / "new.jsonl"
    new.write_bytes(jl(usage_line(1), usage_line(2)))  # longer: size alone would not tell
    os.replace(new, path)
    assert offsets(tail.read()) == [0, chunk.end]
    assert tail.position.generation == 1
    assert tail.position.inode == os.stat(path).st_ino


def test_a_position_from_clickhouse_adopts_the_file_and_finds_first_ts(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    head = jl({"type": "summary"}, usage_line(1, ts="2025-01-02T00:00:00Z"))
    path.write_bytes(head + jl(usage_line(2, ts="2025-01-03T00:00:00Z")))
    tail = make_tail(path, FilePosition(generation=4, inode=None, offset=len(head)))
    assert offsets(tail.read()) == [len(head)]
    assert tail.position.generation == 4  # adopted, not a replacement
    assert tail.source.first_ts == "2025-01-02T00:00:00Z"  # from before the position


def test_first_ts_probe_reads_past_long_untimed_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    big = {"type": "summary", "summary": "x" * (200 << 10)}
    path.write_bytes(jl(big, usage_line(1, ts="2025-07-01T00:00:00Z")))
    tail = make_tail(path)
    assert tail.first_ts() == "2025-07-01T00:00:00Z"
    assert tail.position.offset == 0


def test_a_line_longer_than_a_chunk_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    first = jl({"type": "user", "pad": "x" * 5000})
    path.write_bytes(first + jl({"type": "user"}) + b"x" * 3000)
    tail = make_tail(path, chunk_bytes=1024)
    chunk = tail.read()
    assert offsets(chunk) == [0, len(first)]
    assert chunk is not None and chunk.bad_lines == 0


def test_a_read_asks_for_what_the_file_holds_not_a_whole_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.jsonl"
    first = jl(usage_line(1))
    path.write_bytes(first + jl(usage_line(2)) + b'{"type": "us')
    asked: list[int] = []
    pread = os.pread

    def recording(fd: int, n: int, offset: int) -> bytes:
        asked.append(n)
        return pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", recording)
    tail = make_tail(path, chunk_bytes=1 << 20)
    chunk = tail.read()
    assert offsets(chunk) == [0, len(first)]
    assert asked == [path.stat().st_size]  # a chunk's 1 MiB would be allocated for it
    asked.clear()
    assert chunk is not None
    tail.commit(chunk.end)
    assert tail.read() is None  # the partial line: asked whole, then once more for the rest
    assert asked == [12, 24]
    asked.clear()
    big = make_tail(path, chunk_bytes=64)  # larger than a chunk: a chunk, grown to a line
    assert offsets(big.read()) == [0]
    assert asked[0] == 64 and all(n > 64 for n in asked[1:])


def test_a_line_longer_than_the_limit_is_skipped_to_its_end_unbuffered(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    long = b'{"type": "user", "text": "' + b"MARKER " * 1000 + b'"}'
    after = jl(usage_line(1))
    path.write_bytes(long + b"\n" + after)
    tail = make_tail(path, chunk_bytes=1024, max_line_bytes=2048)
    chunk = tail.read()
    assert chunk is not None and chunk.end == len(long) + 1 and chunk.bad_lines == 1
    record = orjson.loads(chunk.records[0])
    assert record["error"] == "line longer than 2048 bytes (line_too_long)"
    assert record["length"] == len(long) + 1
    assert record["sha256"] == hashlib.sha256(long).hexdigest()
    assert b"MARKER" not in chunk.records[0]
    tail.commit(chunk.end)
    assert offsets(tail.read()) == [len(long) + 1]  # the next line is read whole, not a tail


def test_a_long_line_not_yet_complete_waits(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"x" * 5000)
    tail = make_tail(path, chunk_bytes=1024, max_line_bytes=2048)
    assert tail.read() is None
    assert not tail.changed()
    with path.open("ab") as handle:
        handle.write(b"\n")
    chunk = tail.read()
    assert chunk is not None and chunk.end == 5001 and chunk.bad_lines == 1


def test_a_line_within_the_limit_is_read_whole_however_long(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    line = usage_line(9)
    line["message"]["content"] = [{"type": "text", "text": "y" * 100_000}]  # type: ignore[index]
    path.write_bytes(jl(line))
    chunk = make_tail(path, chunk_bytes=1024, max_line_bytes=1 << 20).read()
    assert chunk is not None and chunk.bad_lines == 0
    assert orjson.loads(chunk.records[0])["line"]["message"]["usage"]["input_tokens"] == 9


def test_a_symlink_or_fifo_is_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "passwd"
    outside.write_bytes(jl(usage_line(1)))
    link = tmp_path / "s.jsonl"
    link.symlink_to(outside)
    with pytest.raises(OSError):
        make_tail(link).read()
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        make_tail(fifo).read()  # and does not block
    assert make_tail(link).first_ts() is None


def test_a_vanished_file_reads_as_nothing(tmp_path: Path) -> None:
    tail = make_tail(tmp_path / "gone.jsonl")
    assert tail.read() is None
    assert not tail.changed()
    assert tail.first_ts() is None
