"""The Rust line reader (``native/``, ``ingestor._native``) gives exactly what the Python reader
gives for every line it takes, and takes the common ones.

The Python reader is the definition (held to the real ccusage by this folder's other tests), so
each taken line is compared value by value, type included, with ``lines.line_row``; declining
is always allowed. The lines: ccusage's mutation list (``test_accept_mutations``), the
generator's corpus with odd lines, and lines made here for what the Rust reads on its own
(the spelling of numbers and strings, timestamps, costs).
"""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_accept_mutations import _lines as mutation_lines

from ingestor.corpus.generate import generate
from ingestor.producer.discover import find_jsonl
from ingestor.producer.lines import NativeRows, line_row, parse_chunk
from ingestor.usage.scan import NULLABLE_FIELDS

MAX_RECORD = 890_000


@pytest.fixture(scope="module")
def native() -> Any:
    try:
        from ingestor import _native
    except ImportError:
        if shutil.which("cargo"):
            pytest.fail("cargo is here but ingestor._native is not built: run `make setup`")
        pytest.skip("no Rust toolchain: the watcher reads every line in Python")
    return _native


def _typed(row: tuple[Any, ...] | None) -> Any:
    return None if row is None else [(type(v).__name__, v) for v in row]


def _python_row(line: bytes, offset: int) -> tuple[Any, ...] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or not line.strip():
        return None
    return line_row(line, obj, offset, len(line) + 1, MAX_RECORD)


def _compare(rows: NativeRows, lines: list[bytes]) -> int:
    """Every taken line's row equals the Python one, and a declined line comes back as its
    bytes; returns how many were taken."""
    data = b"".join(line + b"\n" for line in lines)
    taken, _, _ = rows(data, 100, MAX_RECORD)
    assert len(taken) == len(lines)
    offset = 100
    count = 0
    for line, row in zip(lines, taken, strict=True):
        if type(row) is tuple:
            count += 1
            assert _typed(row) == _typed(_python_row(line, offset)), line
        else:
            assert row == line
        offset += len(line) + 1
    return count


_USAGE = {"input_tokens": 3, "output_tokens": 5, "cache_creation_input_tokens": 7,
          "cache_read_input_tokens": 11}  # fmt: skip
_BASE = {"type": "assistant", "timestamp": "2025-09-02T10:00:00.123Z", "sessionId": "s",
         "uuid": "u", "parentUuid": None, "requestId": "r", "version": "2.0.1", "cwd": "/w",
         "message": {"id": "m", "model": "claude-sonnet-4-5-20250929", "usage": _USAGE,
                     "content": [{"type": "tool_use", "name": "Bash", "input": {}}]}}  # fmt: skip
_USER = {"type": "user", "timestamp": "2025-09-02T10:00:00.500Z", "uuid": "v",
         "message": {"role": "user", "content": [{"type": "tool_result", "content": "x"}]},
         "toolUseResult": {"stdout": "a\nb", "durationMs": 12.5}}  # fmt: skip


def _made_lines(seed: int) -> list[bytes]:
    """Lines on what the Rust reads itself: costs, timestamps, string and number spellings."""
    rng = random.Random(seed)
    trees: list[Any] = []
    for _ in range(3000):
        kind = rng.randrange(4)
        if kind == 0:
            cost = rng.uniform(0, 50) * 10 ** rng.randint(-9, 8)
        elif kind == 1:
            cost = round(rng.uniform(0, 10), rng.randint(0, 9))
        elif kind == 2:
            cost = struct.unpack("d", rng.randbytes(8))[0]
        else:
            cost = rng.choice([0, 1, 3, 10**9 - 1, 10**9, 2**53 + 1, -5, 0.0, -0.0, 1e-4])
        if cost != cost or cost in (float("inf"), float("-inf")):
            continue
        trees.append({**_BASE, "costUSD": cost})
        trees.append({**_USER, "costUSD": cost})
    for day in ("2024-02-29", "2023-02-29", "2025-04-31", "1899-12-31", "1900-01-01",
                "2299-12-31", "2300-01-01", "0001-01-01", "0000-01-01", "9999-12-31"):  # fmt: skip
        for clock in ("T00:00:00.000Z", "T23:59:59.999Z", "T24:00:00.000Z", "T12:60:00.000Z",
                      "T12:00:60.000Z", "T12:00:00Z", "T12:00:00.000+00:00"):  # fmt: skip
            trees.append({**_BASE, "timestamp": day + clock})
            trees.append({**_USER, "timestamp": day + clock})
    for text in ("", "é", "\u2028", "\x7f", "\x1f\x08\t\n\x0c\r", '"\\/', "\U0001f600", "x" * 1100):
        for key in ("sessionId", "uuid", "cwd", "type", "requestId", "version"):
            trees.append({**_BASE, key: text})
            trees.append({**_USER, key: text})
        trees.append({**_BASE, "message": {**_BASE["message"], "model": text}})
        trees.append({**_USER, "message": {"content": [{"type": "tool_use", "name": text}]}})
    for value in (None, True, 1, 1.5, [], {}, "2.0.1"):
        for key in ("isSidechain", "isApiErrorMessage", "type", "sessionId", "costUSD"):
            trees.append({**_BASE, key: value})
            trees.append({**_USER, key: value})
    # ccusage's `:null` scan, which the Rust keeps its own list for: each listed name null,
    # anywhere in a usage line, drops it (and a name not listed does not).
    for name in [*(n.decode() for n in NULLABLE_FIELDS), "parentUuid", "service_tier"]:
        trees.append({**_BASE, "toolUseResult": {name: None}})
        usage = {**_USAGE, name: None}
        trees.append({**_BASE, "message": {**_BASE["message"], "usage": usage}})
    for tokens in (0, 2**40 - 1, 2**40, 2**63, 2**64 - 1, -1, 1.0):
        usage = {**_USAGE, "cache_read_input_tokens": tokens}
        trees.append({**_BASE, "message": {**_BASE["message"], "usage": usage}})
    lines = [orjson.dumps(tree) for tree in trees]
    # Spellings orjson never writes: the Rust must decline them or read them alike.
    line = orjson.dumps(_BASE)
    lines += [
        line.replace(b'"input_tokens":3', b'"input_tokens":3.0'),
        line.replace(b'"input_tokens":3', b'"input_tokens":3e0'),
        line.replace(b'"input_tokens":3', b'"input_tokens":03'),
        line.replace(b'"input_tokens":3', b'"input_tokens":-0'),
        line.replace(b'"input_tokens":3', b'"input_tokens": 3'),
        line.replace(b'"uuid":"u"', b'"uuid":"\\u0075"'),
        line.replace(b'"uuid":"u"', b'"\\u0075uid":"u"'),
        line.replace(b'"uuid":"u"', b'"uuid":"u","uuid":"w"'),
        line.replace(b'"cwd":"/w"', b'"cwd":"\\/w"'),
        line.replace(b'"cwd":"/w"', b'"cwd":"\\u001F"'),
        line.replace(b'"cwd":"/w"', b'"cwd":"\\ud800"'),
        line.replace(b'"cwd":"/w"', b'"cwd":"\xff"'),
        line.replace(b'"cwd":"/w"', b'"cwd":"/w","id":null'),
        line + b"\r",
        b" " + line,
        b"",
        b"   ",
        b"[1,2]",
        b'{"type":"user","message":[1]}',
        b'{"type":"user","message":"text"}',
    ]
    return lines


def test_made_lines_equal_the_python_rows(native: Any) -> None:
    lines = _made_lines(seed=1)
    taken = _compare(native.line_rows, lines)
    assert taken > len(lines) // 2  # most made lines are the common shape


def test_mutation_lines_equal_the_python_rows(native: Any) -> None:
    lines = [line for _, line in mutation_lines() if b"\n" not in line]
    assert len(lines) > 500
    _compare(native.line_rows, lines)


def test_a_raw_control_byte_in_any_string_is_declined(native: Any) -> None:
    # JSON (and orjson) refuse a raw byte below 0x20 in a string; each is put raw in a kept
    # value, a skipped one, a long skipped text (where the Rust scans in bulk) and a key
    # (all but the newline, which ends the line).
    user = orjson.dumps({**_USER, "uuid": "v@"})
    usage = orjson.dumps({**_BASE, "message": {**_BASE["message"], "content": "t@"}})  # type: ignore[dict-item]
    long = orjson.dumps({**_USER, "note": "x" * 100 + "@" + "y" * 100})
    keyed = orjson.dumps({**_USER, "k@": 1})
    lines = [
        line.replace(b"@", bytes([byte]))
        for byte in range(0x20)
        if byte != 0x0A
        for line in (user, usage, long, keyed)
    ]
    data = b"".join(line + b"\n" for line in lines)
    taken, _, _ = native.line_rows(data, 0, MAX_RECORD)
    assert taken == lines  # each declined: its bytes
    # And with the byte above the range (0x7f is a character JSON allows), all four are taken.
    kept = [line.replace(b"@", b"\x7f") for line in (user, usage, long, keyed)]
    assert _compare(native.line_rows, kept) == 4


def _corpus(tmp_path: Path) -> list[Path]:
    generate(tmp_path, lines=3_000, seed=11, odd_rate=0.2, projects=2)
    odd = tmp_path / "projects" / "-odd" / "odd-1.jsonl"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(b"\n".join(_made_lines(seed=2)) + b"\n{not json\npartial")
    return [Path(p) for p in find_jsonl([tmp_path / "projects"])]


def test_parse_chunk_is_the_same_with_the_rust_reader(native: Any, tmp_path: Path) -> None:
    files = _corpus(tmp_path)
    total = taken = 0
    for path in files:
        data = path.read_bytes()
        for offset in (0, 7):  # a chunk need not start at the file's start
            ours = parse_chunk(data, offset, max_record_bytes=MAX_RECORD, columns=True)
            python = parse_chunk(
                data, offset, max_record_bytes=MAX_RECORD, columns=True, native=False
            )
            assert (ours.records, ours.ends, ours.first_ts, ours.bad_lines, ours.end) == (
                python.records,
                python.ends,
                python.first_ts,
                python.bad_lines,
                python.end,
            ), path
        if path.parent.name != "-odd":
            rows, _, _ = native.line_rows(data, 0, MAX_RECORD)
            total += len(rows)
            taken += sum(type(row) is tuple for row in rows)
    assert total == 3_000
    # The generator writes Claude Code's spelling: all but its odd lines (a fifth here) are the
    # Rust's to read (0.87 measured; 0.998 at the generator's usual odd rate).
    assert taken / total > 0.8


def test_first_timestamp_is_the_first_readable_one(native: Any) -> None:
    declined = orjson.dumps({**_USER, "timestamp": "2025-09-02T10:00:00+01:00"}) + b" "
    later = orjson.dumps(_USER)
    data = b"\n".join([b'{"type":"summary"}', declined, later]) + b"\n"
    chunk = parse_chunk(data, 0, max_record_bytes=MAX_RECORD, columns=True)
    assert chunk.first_ts == "2025-09-02T10:00:00+01:00"
    rows, index, ts = native.line_rows(data, 0, MAX_RECORD)
    assert (rows[1], index, ts) == (declined, 2, "2025-09-02T10:00:00.500Z")


def _random_tree(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 7, 10, 2**63 - 1, -(2**63), 2**64 - 1])
    if kind == 2:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-8, 20)
    if kind in (3, 4, 5):
        alphabet = 'ab"\\/\n\t\x00\x1f\x7fé\u2028😀 '
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
    if kind in (6, 7):
        keys = ["k", "é", 'a"b', "\x01", "", "x y"]
        return {rng.choice(keys) + str(i): _random_tree(rng, depth + 1) for i in range(3)}
    return [_random_tree(rng, depth + 1) for _ in range(rng.randrange(4))]


def _has_float(tree: Any) -> bool:
    if isinstance(tree, dict):
        return any(_has_float(v) for v in tree.values())
    if isinstance(tree, list):
        return any(_has_float(v) for v in tree)
    return isinstance(tree, float)


def _mutate(rng: random.Random, line: bytes) -> bytes:
    at = rng.randrange(len(line) + 1)
    insert = rng.choice([b" ", b"\\u0041", b"-0", b"0", b"e5", b'"', b"\\", b"\xff", b",", b"\r"])
    return line[:at] + insert + line[at + rng.randrange(2) :]


def test_the_accepted_spelling_is_orjsons(native: Any) -> None:
    """``canonical`` accepts what orjson writes (floats aside: the Rust takes only the positional
    ones) and nothing that orjson would not write back byte for byte."""
    rng = random.Random(5)
    accepted = 0
    for _ in range(4000):
        tree = {"t": _random_tree(rng)}
        line = orjson.dumps(tree)
        if native.canonical(line):
            accepted += 1
        else:
            assert _has_float(tree), line
        for candidate in (line, _mutate(rng, line), _mutate(rng, _mutate(rng, line))):
            if native.canonical(candidate):
                assert orjson.dumps(orjson.loads(candidate)) == candidate, candidate
    assert accepted > 1000
