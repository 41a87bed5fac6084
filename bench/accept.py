"""µs per line of ``read_usage_line``: the general path against the fast path, on one corpus.

``python -m bench.accept --lines 200000`` generates a corpus (``ingestor.corpus.generate``),
splits its lines into usage lines (``message.usage``) and the rest, and times each kind as the
watcher calls it: the line was just parsed by orjson, so bytes and tree are warm in cache. Each
line is parsed, then timed alone; the figure is the mean over all lines of that kind.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from ingestor.corpus.generate import generate
from ingestor.usage.accept import read_usage_line, read_usage_line_general
from ingestor.usage.verdict import Rejected, UsageLine

Reader = Callable[..., UsageLine | Rejected | None]


def _lines(root: Path, lines: int, seed: int) -> tuple[list[bytes], list[bytes]]:
    generate(root, lines=lines, seed=seed)
    usage: list[bytes] = []
    other: list[bytes] = []
    for path in sorted((root / "projects").rglob("*.jsonl")):
        for line in path.read_bytes().split(b"\n")[:-1]:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            has_usage = isinstance(read_usage_line_general(line, obj), UsageLine | Rejected)
            (usage if has_usage else other).append(line)
    return usage, other


def _us_per_line(read: Reader, lines: list[bytes]) -> float:
    loads, clock = orjson.loads, time.perf_counter_ns
    total = 0
    for line in lines:
        obj = loads(line)
        start = clock()
        read(line, obj)
        total += clock() - start
    overhead = _clock_overhead_ns(len(lines))
    return max(total - overhead, 0) / len(lines) / 1000


def _clock_overhead_ns(samples: int) -> int:
    clock = time.perf_counter_ns
    total = 0
    for _ in range(samples):
        start = clock()
        total += clock() - start
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.accept", description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many passes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        usage, other = _lines(Path(tmp), args.lines, args.seed)
    print(f"{len(usage)} usage lines, {len(other)} other lines")
    print(f"{'path':8} {'usage µs/line':>14} {'other µs/line':>14}")
    for name, read in (("general", read_usage_line_general), ("fast", read_usage_line)):
        figures = [
            min(_us_per_line(read, lines) for _ in range(args.rounds)) for lines in (usage, other)
        ]
        print(f"{name:8} {figures[0]:14.2f} {figures[1]:14.2f}")


if __name__ == "__main__":
    main()
