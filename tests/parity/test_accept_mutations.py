"""``read_usage_line`` against the real ccusage 20.0.24, one mutated field at a time.

Each base line below is a realistic Claude Code transcript line. Every mutation changes one thing
(a field's JSON type or spelling, a key, the line's framing) and lands in its own file
``projects/p<i>/<i>.jsonl``: ``session --json`` then lists exactly the lines the non-daily
loader accepted (one session per file) and ``daily --json --instances`` the daily loader's (one
project per file). All mutations run in one binary call per report. The list is deterministic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestor.usage.accept import Rejected, UsageLine, read_usage_line

pytestmark = pytest.mark.parity


@dataclass(frozen=True)
class Raw:
    """Bytes written verbatim: number spellings, spacing, invalid UTF-8."""

    data: bytes


Edit = Callable[[Any, int], bytes]  # (the base line's tree, the mutation's index) -> line
Pairs = list[tuple[Any, Any]]  # an object as ordered pairs; keys are str or Raw (spelled)


def _pairs(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, _pairs(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ("list", [_pairs(v) for v in value])
    return value


def _enc(value: Any) -> bytes:
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, tuple):
        return b"[" + b",".join(_enc(v) for v in value[1]) + b"]"
    if isinstance(value, list):
        return b"{" + b",".join(_key(k) + b":" + _enc(v) for k, v in value) + b"}"
    return orjson.dumps(value)


def _key(key: Any) -> bytes:
    return key.data if isinstance(key, Raw) else orjson.dumps(key)


def _base_a(i: int) -> dict[str, Any]:
    return {
        "parentUuid": "3f1c2a9e-0000-4000-8000-000000000001",
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/project",
        "sessionId": "0b6c7a52-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
        "version": "2.0.14",
        "gitBranch": "main",
        "message": {
            "id": f"msg_01A{i}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "tool_use", "id": "toolu_01X", "name": "Bash", "input": {"command": "ls"}}
            ],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 4,
                "cache_creation_input_tokens": 1234,
                "cache_read_input_tokens": 5678,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 1000,
                    "ephemeral_1h_input_tokens": 200,
                },
                "output_tokens": 89,
                "service_tier": "standard",
            },
        },
        "requestId": f"req_011A{i}",
        "type": "assistant",
        "uuid": "3f1c2a9e-0000-4000-8000-000000000002",
        "timestamp": "2025-10-01T10:00:00.000Z",
    }


def _base_b(i: int) -> dict[str, Any]:
    return {
        "isSidechain": True,
        "sessionId": "s-b",
        "version": "1.0.98",
        "message": {
            "id": f"msg_01B{i}",
            "model": "claude-opus-4-1-20250805",
            "role": "assistant",
            "content": [{"type": "text", "text": "done"}],
            "usage": {
                "input_tokens": 10,
                "output_tokens": 20,
                "cache_creation_input_tokens": 30,
                "cache_read_input_tokens": 40,
                "speed": "fast",
            },
        },
        "costUSD": 0.0123,
        "requestId": f"req_011B{i}",
        "timestamp": "2025-09-30T23:59:59.999+02:00",
    }


def _base_c(i: int) -> dict[str, Any]:
    return {
        "timestamp": "2025-10-02T00:00:00Z",
        "message": {"usage": {"input_tokens": 1, "output_tokens": 2}},
    }


def _base_d(i: int) -> dict[str, Any]:
    """An agent-progress line: only the daily loader reads its nested usage."""
    return {
        "parentUuid": "3f1c2a9e-0000-4000-8000-000000000003",
        "isSidechain": False,
        "sessionId": "s-d",
        "version": "2.0.30",
        "type": "progress",
        "data": {
            "type": "agent_progress",
            "message": {
                "type": "assistant",
                "timestamp": "2025-10-03T08:00:00.000Z",
                "message": {
                    "id": f"msg_01D{i}",
                    "model": "claude-haiku-4-5-20251001",
                    "usage": {"input_tokens": 7, "output_tokens": 8, "cache_read_input_tokens": 9},
                },
                "requestId": f"req_011D{i}",
            },
        },
        "timestamp": "2025-10-03T08:00:01.000Z",
    }


def _base_e(i: int) -> dict[str, Any]:
    return {
        "isApiErrorMessage": True,
        "sessionId": "s-e",
        "version": "2.0.1",
        "message": {
            "id": f"msg_01E{i}",
            "model": "<synthetic>",
            "content": [{"type": "text", "text": "Claude AI usage limit reached|1759320000"}],
            "usage": {
                "input_tokens": 5,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
        "requestId": f"req_011E{i}",
        "timestamp": "2025-10-04T12:00:00.000Z",
    }


BASES: dict[str, Callable[[int], dict[str, Any]]] = {
    "a": _base_a,
    "b": _base_b,
    "c": _base_c,
    "d": _base_d,
    "e": _base_e,
}

# Field values tried at every known field (and a few unknown ones).
VALUES: list[tuple[str, Any]] = [
    ("str", "x"),
    ("empty", ""),
    ("space", " "),
    ("zero", 0),
    ("one", 1),
    ("neg1", -1),
    ("negzero", Raw(b"-0")),
    ("negzero_f", Raw(b"-0.0")),
    ("float1", Raw(b"1.0")),
    ("exp", Raw(b"1e3")),
    ("exp_cap", Raw(b"1E3")),
    ("frac", 0.5),
    ("i63", 2**63),
    ("u64max", 2**64 - 1),
    ("u64over", Raw(b"18446744073709551616")),
    ("huge", Raw(b"1e400")),
    ("true", True),
    ("false", False),
    ("str_false", "false"),
    ("null", None),
    ("null_spaced", Raw(b" null")),
    ("arr", ("list", [])),
    ("arr1", ("list", [1])),
    ("obj", []),
    ("obj1", [("a", 1)]),
    ("standard", "standard"),
    ("fast", "fast"),
    ("Fast", "Fast"),
    ("speed_map", [("fast", None)]),
    ("semver", "1.2.3"),
    ("unicode", "é☃"),
    ("escaped", Raw(b'"\\u00e9x"')),
    ("lone_surrogate", Raw(b'"\\ud800"')),
    ("bad_utf8", Raw(b'"\xff"')),
    ("ts", "2025-10-05T00:00:00.000Z"),
]

TIMESTAMPS = [
    "2025-10-01T10:00:00.000Z",
    "2025-10-01T10:00:00Z",
    "2025-10-01T10:00:00+05:30",
    "2025-10-01T10:00:00-08:00",
    "2025-10-01T10:00:00.123-08:00",
    "2025-10-01T10:00:00.123456Z",
    "2025-10-01T10:00:00.12Z",
    "2025-10-01T10:00:00.1234Z",
    "2025-10-01t10:00:00.000Z",
    "2025-10-01T10:00:00.000z",
    "2025-10-01T10:00:00+0530",
    "2025-10-01T10:00:00.000+0530",
    "2025-10-01 10:00:00.000Z",
    "2025-10-01T10:00:00,000Z",
    "2025-10-01T10:00:00.000",
    "2025-10-01T10:00:00",
    "2025-10-01",
    "1899-12-31T23:59:59.000Z",
    "1970-01-01T00:00:00.000Z",
    "0001-01-01T00:00:00.000Z",
    "0000-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z",
    "2024-02-29T12:00:00.000Z",
    "2023-02-29T12:00:00.000Z",
    "2100-02-29T12:00:00.000Z",
    "2000-02-29T12:00:00.000Z",
    "2025-10-01T23:59:60.000Z",
    "2025-10-01T24:00:00.000Z",
    "2025-10-01T10:60:00.000Z",
    "2025-13-01T10:00:00.000Z",
    "2025-00-10T10:00:00.000Z",
    "2025-10-00T10:00:00.000Z",
    "2025-04-31T10:00:00.000Z",
    "2025-10-01T10:00:00.000+99:99",
    "2025-10-01T10:00:00.000-00:00",
    "2025-10-01T10:00:00.000+05-30",
    "2025-10-01T10:00:00.000Z ",
    " 2025-10-01T10:00:00.000Z",
    "2025-10-01T10:00:00.-00Z",
    "2025-10-01T10:00:00.+00Z",
    "+025-10-01T10:00:00.000Z",
    "２０２５-10-01T10:00:00.000Z",
    "2025-1-01T10:00:00.000Z",
    "2025-10-01T10:00:00.000ZZ",
    "2025-10-01T10:00:00Z+00:00",
    "2025-10-01T10:00:00.000Z+00:00",
]

VERSIONS = [
    "2.0",
    "v1.0.0",
    "1.0.0-beta",
    "unknown",
    "1.0.0",
    "1.0.x",
    "1.0.",
    "01.002.3",
    "1.2.3.4",
    " 1.2.3",
    "１.2.3",
    "1.2.3abc",
    "10.20.30",
    "1..3",
]


def _fields(base: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of the base line, objects first-to-last, depth first."""
    for key, value in base.items():
        path = (*prefix, key)
        yield path
        if isinstance(value, dict):
            yield from _fields(value, path)


def _locate(tree: Any, path: tuple[str, ...]) -> tuple[Pairs, int]:
    pairs: Pairs = tree
    for key in path[:-1]:
        pairs = next(v for k, v in pairs if k == key)
    return pairs, next(n for n, (k, _) in enumerate(pairs) if k == path[-1])


@dataclass(frozen=True)
class Mutation:
    name: str
    line: bytes


def _set(path: tuple[str, ...], value: Any) -> Edit:
    def edit(tree: Any, i: int) -> bytes:
        pairs, n = _locate(tree, path)
        if isinstance(value, str) and value and path[-1] in ("id", "requestId"):
            fresh: Any = f"{value}{i}"  # unique: the binary dedups across files
        else:
            fresh = value
        pairs[n] = (pairs[n][0], fresh)
        return _enc(tree)

    return edit


def _drop(path: tuple[str, ...]) -> Edit:
    def edit(tree: Any, i: int) -> bytes:
        pairs, n = _locate(tree, path)
        del pairs[n]
        return _enc(tree)

    return edit


def _dup(path: tuple[str, ...], same: bool) -> Edit:
    def edit(tree: Any, i: int) -> bytes:
        pairs, n = _locate(tree, path)
        pairs.append((pairs[n][0], pairs[n][1] if same else "x"))
        return _enc(tree)

    return edit


def _rekey(path: tuple[str, ...], spelled: bytes) -> Edit:
    def edit(tree: Any, i: int) -> bytes:
        pairs, n = _locate(tree, path)
        pairs[n] = (Raw(spelled), pairs[n][1])
        return _enc(tree)

    return edit


def _spaced_value(path: tuple[str, ...]) -> Edit:
    def edit(tree: Any, i: int) -> bytes:
        pairs, n = _locate(tree, path)
        pairs[n] = (pairs[n][0], Raw(b" " + _enc(pairs[n][1])))
        return _enc(tree)

    return edit


def _move_first(path: tuple[str, ...]) -> Edit:
    def edit(tree: Any, i: int) -> bytes:
        pairs, n = _locate(tree, path)
        pairs.insert(0, pairs.pop(n))
        return _enc(tree)

    return edit


def _whole(transform: Callable[[bytes], bytes]) -> Edit:
    return lambda tree, i: transform(_enc(tree))


def _mutations() -> list[tuple[str, str, Edit]]:
    out: list[tuple[str, str, Edit]] = []
    for base, make in BASES.items():
        out.append((base, "as-is", _whole(lambda b: b)))
        for path in _fields(make(0)):
            dotted = ".".join(path)
            for name, value in VALUES:
                out.append((base, f"{dotted}={name}", _set(path, value)))
            out.append((base, f"{dotted} dropped", _drop(path)))
            out.append((base, f"{dotted} twice (same)", _dup(path, True)))
            out.append((base, f"{dotted} twice (other)", _dup(path, False)))
            out.append((base, f"{dotted} spaced colon", _rekey(path, b'"%s" ' % path[-1].encode())))
            out.append((base, f"{dotted} escaped key", _rekey(path, _escaped_key(path[-1]))))
            out.append((base, f"{dotted} upper key", _rekey(path, orjson.dumps(path[-1].upper()))))
            out.append((base, f"{dotted} spaced value", _spaced_value(path)))
            out.append((base, f"{dotted} moved first", _move_first(path)))
            if path[-1] == "timestamp":
                for ts in TIMESTAMPS:
                    out.append((base, f"{dotted}={ts!r}", _set(path, ts)))
                out.append((base, f"{dotted}=epoch ms", _set(path, 1759312800000)))
            if path[-1] == "version":
                for version in VERSIONS:
                    out.append((base, f"{dotted}={version!r}", _set(path, version)))
        for name, transform in WHOLE_LINE:
            out.append((base, name, _whole(transform)))
        for name, extra in EXTRA_FIELDS:
            out.append((base, f"extra {name}", _whole(_add_field(extra))))
    return out


def _escaped_key(key: str) -> bytes:
    return b'"\\u%04x%s"' % (ord(key[0]), key[1:].encode())


def _add_field(extra: bytes) -> Callable[[bytes], bytes]:
    return lambda line: line[:-1] + b"," + extra + b"}"


WHOLE_LINE: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("crlf", lambda b: b + b"\r"),
    ("bom", lambda b: b"\xef\xbb\xbf" + b),
    ("trailing garbage", lambda b: b + b"x"),
    ("trailing comma", lambda b: b + b","),
    ("trailing space", lambda b: b + b" "),
    ("trailing tab", lambda b: b + b"\t"),
    ("leading space", lambda b: b" " + b),
    ("two objects", lambda b: b + b),
    ("truncated", lambda b: b[:-1]),
    ("pretty colon", lambda b: b.replace(b'":', b'": ')),
    ("usage spaced", lambda b: b.replace(b'"usage":{', b'"usage": {')),
    ("usage escaped", lambda b: b.replace(b'"usage":{', b'"us\\u0061ge":{')),
    ("wrapped in array", lambda b: b"[" + b + b"]"),
    ("nul byte", lambda b: b.replace(b'"x"', b'"x\\u0000"') + b""),
    ("raw tab in string", lambda b: b.replace(b'"2025', b'"\t2025', 1)),
]

EXTRA_FIELDS: list[tuple[str, bytes]] = [
    ("unknown null", b'"foo":null'),
    ("cwd null", b'"cwd":null'),
    ("text with id:null", b'"note":"\\"id\\":null"'),
    ("text with model:null", b'"note":"model\\":null"'),
    ("stop_reason null", b'"stop_reason":null'),
    ("isSidechain null", b'"zz":1,"isSidechain2":null'),
    ("unknown -0", b'"foo":-0'),
    ("unknown 1e400", b'"foo":1e400'),
    ("unknown u64 over", b'"foo":18446744073709551616'),
    ("unknown lone surrogate", b'"foo":"\\udc00"'),
    ("unknown bad utf8", b'"foo":"\xc3\x28"'),
    ("unknown deep 126", b'"foo":' + b"[" * 126 + b"]" * 126),
    ("unknown deep 127", b'"foo":' + b"[" * 127 + b"]" * 127),
    ("unknown deep 300", b'"foo":' + b"[" * 300 + b"]" * 300),
    ("unknown dup", b'"foo":1,"foo":2'),
    ("toolUseResult usage", b'"toolUseResult":{"usage":{"input_tokens":"x"}}'),
    ("unknown with marker text", b'"foo":"\\"usage\\":{"'),
    ("emoji pair", b'"foo":"\\ud83d\\ude00"'),
]


def _lines() -> list[tuple[str, bytes]]:
    lines: list[tuple[str, bytes]] = []
    for i, (base, name, edit) in enumerate(_mutations()):
        lines.append((f"{base}: {name}", edit(_pairs(BASES[base](i)), i)))
    lines.extend(_SPECIAL)
    return lines


_SPECIAL: list[tuple[str, bytes]] = [
    (
        "array top-level",
        b'["s","2025-10-01T10:00:00.000Z","2.0.1",{"usage":{"input_tokens":5,'
        b'"output_tokens":1},"model":"m","id":"arr1"},null,null,null,null]',
    ),
    (
        "array top-level short",
        b'["s","2025-10-01T10:00:00.000Z","2.0.1",{"usage":{"input_tokens":5,'
        b'"output_tokens":1},"model":"m","id":"arr2"}]',
    ),
    (
        "array usage",
        b'{"timestamp":"2025-10-01T10:00:00.000Z","message":{"usage":[5,1,2,3,null],'
        b'"id":"arr3"},"x":{"usage":{}}}',
    ),
    (
        "array usage 6",
        b'{"timestamp":"2025-10-01T10:00:00.000Z","message":{"usage":[5,1,2,3,"fast",[]],'
        b'"id":"arr4"},"x":{"usage":{}}}',
    ),
    (
        "array usage short",
        b'{"timestamp":"2025-10-01T10:00:00.000Z","message":{"usage":[5,1],'
        b'"id":"arr5"},"x":{"usage":{}}}',
    ),
    (
        "array message",
        b'{"timestamp":"2025-10-01T10:00:00.000Z","message":[{"input_tokens":6,'
        b'"output_tokens":1},"m","arr6"],"x":{"usage":{}}}',
    ),
    (
        "array daily direct",
        b'["2025-10-01T10:00:00.000Z",{"usage":{"input_tokens":5,'
        b'"output_tokens":1},"id":"arr7"},null,null,null,null,null]',
    ),
    (
        "array cache_creation",
        b'{"timestamp":"2025-10-01T10:00:00.000Z","message":{"usage":'
        b'{"input_tokens":5,"output_tokens":1,"cache_creation":[3]},"id":"arr8"}}',
    ),
    ("whitespace only", b"   "),
    ("empty", b""),
    (
        "user turn",
        b'{"type":"user","message":{"role":"user","content":"hi"},'
        b'"timestamp":"2025-10-01T10:00:00.000Z"}',
    ),
    ("not json with marker", b'oops "usage":{ "input_tokens":1'),
]


@dataclass(frozen=True)
class Counted:
    tokens: tuple[int, int, int, int] | None  # input, output, cache creation, cache read


def _counted(verdict: UsageLine | Rejected | None) -> UsageLine | None:
    return verdict if isinstance(verdict, UsageLine) else None


def _ours(line: bytes, daily: bool) -> Counted:
    verdict = read_usage_line(line, daily=daily)
    assert verdict is None or isinstance(verdict, Rejected | UsageLine)
    with contextlib.suppress(orjson.JSONDecodeError):  # the watcher's call, through the fast path
        watched = read_usage_line(line, orjson.loads(line), daily=daily)
        # Counted alike; a skip may name a rule only when the tree is known (``"message":[1]``).
        assert _counted(watched) == _counted(verdict)
    if not isinstance(verdict, UsageLine):
        return Counted(None)
    tokens = (
        verdict.input_tokens,
        verdict.output_tokens,
        verdict.cache_creation_tokens,
        verdict.cache_read_input_tokens,
    )
    return Counted(tokens)


def _tokens(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        row["inputTokens"],
        row["outputTokens"],
        row["cacheCreationTokens"],
        row["cacheReadTokens"],
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple[str, bytes]], Path]:
    lines = _lines()
    root = tmp_path_factory.mktemp("mutations")
    for i, (_, line) in enumerate(lines):
        folder = root / "projects" / f"p{i}"
        folder.mkdir(parents=True)
        (folder / f"{i}.jsonl").write_bytes(line + b"\n")
    return lines, root


def _session_shown(tokens: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
    """The session report leaves out a session whose token total, summed mod 2**64, is 0.

    That is the report, not acceptance: ``monthly`` still counts such a line (its cost too).
    """
    if tokens is None or sum(tokens) % 2**64 == 0:
        return None
    return tokens


def _disagreements(
    lines: list[tuple[str, bytes]], theirs: dict[int, tuple[int, int, int, int]], daily: bool
) -> list[str]:
    wrong = []
    for i, (name, line) in enumerate(lines):
        ours = _ours(line, daily).tokens
        if not daily:
            ours = _session_shown(ours)
        if ours != theirs.get(i):
            wrong.append(f"#{i} {name}: ours={ours} ccusage={theirs.get(i)} line={line[:300]!r}")
    return wrong


def test_mutation_list_is_large_and_deterministic() -> None:
    assert _lines() == _lines()
    assert len(_lines()) > 1500


def test_session_loader_matches_binary(ccusage: Any, corpus: Any) -> None:
    lines, root = corpus
    report = ccusage.report("session", root)
    theirs = {int(row["sessionId"]): _tokens(row) for row in report["sessions"]}
    wrong = _disagreements(lines, theirs, daily=False)
    assert not wrong, f"{len(wrong)} of {len(lines)} disagree:\n" + "\n".join(wrong[:60])


def test_monthly_totals_match_binary(ccusage: Any, corpus: Any) -> None:
    lines, root = corpus
    report = ccusage.report("monthly", root)
    counted = [t for _, line in lines if (t := _ours(line, daily=False).tokens) is not None]
    ours = tuple(min(sum(column), 2**64 - 1) for column in zip(*counted, strict=True))
    assert ours == _tokens(report["totals"])


def test_daily_loader_matches_binary(ccusage: Any, corpus: Any) -> None:
    lines, root = corpus
    report = ccusage.report("daily", root, args=("--instances",))
    theirs: dict[int, tuple[int, int, int, int]] = {}
    for project, rows in report["projects"].items():
        assert len(rows) == 1
        theirs[int(project.removeprefix("p"))] = _tokens(rows[0])
    wrong = _disagreements(lines, theirs, daily=True)
    assert not wrong, f"{len(wrong)} of {len(lines)} disagree:\n" + "\n".join(wrong[:60])
