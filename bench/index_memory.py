"""``python -m bench.index_memory --entries N``: what one entry of the worker's dedup index costs.

Builds a scope's index the way the worker restores it (``worker.restore.load_index``) from
synthetic stored rows shaped like Claude Code's: uuid session ids, ~10 models, ~500 source files,
``msg_…``/``req_…`` ids, one to three streaming copies a message (a later copy may carry more
output tokens and replace the first), a few sidechain replays and tool names. Each row is made of
fresh objects, as a driver returns them. The rows are generated lazily, so only the index stays.

Prints, for the same rows built twice: the RSS growth (no tracing), then the bytes tracemalloc
sees held by the index, each divided by the entries kept. Figures only.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any, cast

__all__ = ["main"]

_MODELS = [f"claude-{family}-4-{n}-2025{n:02}01" for family in ("opus", "sonnet") for n in range(5)]
_TOOLS = ["Bash", "Read", "Edit", "Write", "Grep", "Glob", "Task", "TodoWrite"]


def _fresh(value: str) -> str:
    """A new object equal to ``value`` (a driver hands out one per row)."""
    return value.encode().decode()


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}{rng.getrandbits(96):024x}"  # as long as Anthropic's base62 ids


def rows(messages: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Stored usage rows as ``load_index`` selects them, in its order (file, offset)."""
    rng = random.Random(seed)
    files = [f"/home/user/.claude/projects/-home-user-src-project{n % 40}/" for n in range(500)]
    files = sorted(path + str(uuid.UUID(int=rng.getrandbits(128))) + ".jsonl" for path in files)
    per_file = max(messages // len(files), 1)
    made = 0
    for file in files:
        session = str(uuid.UUID(int=rng.getrandbits(128)))
        offset, ts = 0, 1_760_000_000_000 + rng.randrange(10**9)
        recent: list[tuple[str, str, int]] = []
        for _ in range(per_file):
            if made >= messages:
                return
            made += 1
            message, request = _id(rng, "msg_01"), _id(rng, "req_011C")
            model = rng.choice(_MODELS)
            i, cc, cr = rng.randrange(1, 50), rng.randrange(0, 30_000), rng.randrange(0, 200_000)
            out = rng.randrange(1, 2_000)
            sidechain = rng.random() < 0.03
            if sidechain and recent:  # a /btw replay of a parent message, same instant
                message, _, ts = rng.choice(recent)
                request = _id(rng, "req_011C")
            recent = (recent + [(message, request, ts)])[-20:]
            for copy in range(rng.choice((1, 2, 2, 3))):
                tools = rng.sample(_TOOLS, rng.choice((0, 0, 1, 2)))
                o = out if copy == 0 or rng.random() < 0.8 else out + rng.randrange(1, 500)
                cost = f"0.{rng.randrange(10**9, 10**10):010d}".rstrip("0")
                yield (
                    _fresh(message), _fresh(request), rng.random() < 0.01,
                    _fresh(file), 1, offset, _fresh(session), _fresh(model), ts,
                    i, o, cc, cr, cost, [_fresh(t) for t in tools], sidechain, _fresh(session),
                )  # fmt: skip
                offset += rng.randrange(800, 6_000)
            ts += rng.randrange(1_000, 60_000)


class _Rows:
    """Just enough of ``ClickHouse`` for ``load_index``: no file to page by (one page), and its
    one query for lines answers the rows."""

    def __init__(self, made: Iterator[tuple[Any, ...]]) -> None:
        self._made = made

    def query(self, sql: str) -> Iterator[tuple[Any, ...]]:
        if sql.startswith("SELECT source_file, count()"):
            return iter(())
        return self._made


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _build(messages: int) -> Any:
    from ingestor.sink.engine import ClickHouse
    from ingestor.worker.restore import load_index

    return load_index(cast(ClickHouse, _Rows(rows(messages))), "scope")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.index_memory", description=__doc__)
    p.add_argument("--entries", type=int, default=500_000, help="messages (≈ entries kept)")
    args = p.parse_args(argv)
    _build(1_000)  # imports and warm caches outside the measurement
    gc.collect()

    before = _rss_kb()
    began = time.perf_counter()
    index = _build(args.entries)
    seconds = time.perf_counter() - began
    gc.collect()
    grown = (_rss_kb() - before) * 1024
    entries = len(index)
    del index
    gc.collect()

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    index = _build(args.entries)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(index) == entries

    each = seconds / entries * 1e6
    print(f"entries kept: {entries:,} (built in {seconds:.1f} s, {each:.1f} µs each, rows made)")
    print(f"RSS growth:   {grown / 2**20:7.1f} MB  {grown / entries:6.0f} B/entry")
    print(f"tracemalloc:  {traced / 2**20:7.1f} MB  {traced / entries:6.0f} B/entry")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
