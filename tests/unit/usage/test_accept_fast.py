"""``fast_usage_line`` either declines or returns exactly ``read_usage_line_general``'s verdict.

The snuba pattern of two implementations held equal: every line of a generated corpus and every
line the binary parity test builds (as written, and re-spelled by orjson so the fast path's field
checks see each mutation), through both paths, both loaders.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from ingestor.corpus.generate import generate
from ingestor.usage.accept import read_usage_line, read_usage_line_general
from ingestor.usage.accept_fast import DECLINED, fast_usage_line, null_field
from ingestor.usage.scan import unsupported_null_field
from ingestor.usage.verdict import UsageLine

_MUTATIONS = Path(__file__).parents[2] / "parity" / "test_accept_mutations.py"


def _mutation_module() -> ModuleType:
    """The parity test's generator, loaded by path (test folders are not packages)."""
    spec = importlib.util.spec_from_file_location("_accept_mutations", _MUTATIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@functools.cache
def _mutation_lines() -> list[bytes]:
    lines: list[bytes] = [line for _, line in _mutation_module()._lines()]
    respelled = []
    for line in lines:
        try:
            respelled.append(orjson.dumps(orjson.loads(line)))
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            continue
    return lines + respelled


def _corpus_lines(root: Path, seed: int) -> Iterator[bytes]:
    generate(root, lines=5000, seed=seed)
    for path in sorted((root / "projects").rglob("*.jsonl")):
        yield from path.read_bytes().split(b"\n")[:-1]


def _check(line: bytes, daily: bool) -> bool:
    """Assert the contract on one line; True when the fast path answered."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    general = read_usage_line_general(line, obj, daily=daily)
    assert read_usage_line(line, obj, daily=daily) == general
    fast = fast_usage_line(line, obj, daily)
    if fast is DECLINED:
        return False
    assert fast == general, line[:300]
    assert type(fast) is type(general)
    if isinstance(fast, UsageLine):
        assert isinstance(general, UsageLine)
        assert type(fast.cost_usd) is type(general.cost_usd)
    return True


@pytest.mark.parametrize("daily", [False, True])
def test_every_mutation_agrees_or_is_declined(daily: bool) -> None:
    lines = _mutation_lines()
    answered = sum(_check(line, daily) for line in lines)
    assert answered > len(lines) // 4  # the re-spelled mutations exercise the field checks


@pytest.mark.parametrize(("seed", "daily"), [(1, False), (7, False), (7, True)])
def test_corpus_lines_agree_and_are_mostly_answered(tmp_path: Path, seed: int, daily: bool) -> None:
    lines = list(_corpus_lines(tmp_path, seed))
    usage = [line for line in lines if b'"usage":{' in line]
    other = [line for line in lines if b'"usage":{' not in line]
    assert sum(_check(line, daily) for line in other) >= 0.99 * len(other)
    assert sum(_check(line, daily) for line in usage) >= 0.98 * len(usage)


def test_null_scan_equals_the_byte_walk() -> None:
    tricky = [
        b"",
        b":null",
        b'":null',
        b'"id":null',
        b'"":null',
        b'x"id":null',
        b'"id" :null',
        b'{"a":"\\"id\\":null"}',
        b'{"a":"model\\":null"}',
        b'"cwd"x:null"id":null',
        b'{"stop_reason":null,"model":null}',
        b'{"x":1}:null:null"',
    ]
    for line in tricky + _mutation_lines():
        assert null_field(line) == unsupported_null_field(line), line[:200]
