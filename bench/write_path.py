"""``python -m bench.write_path``: the worker's write path alone, on the batches it builds.

Its thread's CPU is the figure to compare (the write path holds the GIL for it, and the worker's
stream processing waits for the GIL meanwhile), beside the process's CPU (chdb's own threads
too: a query may run on several); wall time follows the machine's load.

Rows are built as the worker builds them (the watcher's ``parse_chunk`` -> envelopes ->
``process_decoded``), cut into batches of ``--batch-rows``, then stored with ``write_batch`` into
a fresh chdb while the time of each step is summed (``arrow_table``, chdb's insert, the winners'
queries and decision). Figures only: the records/s of ``write_batch`` is what bounds the worker
when its insert thread is the slower side.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.envelopes import watcher_envelopes

__all__ = ["main"]

_spent: dict[str, float] = defaultdict(float)
_cpu: dict[str, float] = defaultdict(float)
_process: dict[str, float] = defaultdict(float)
_calls: dict[str, int] = defaultdict(int)


@contextmanager
def _timed(name: str) -> Iterator[None]:
    started, cpu, process = time.perf_counter(), time.thread_time(), time.process_time()
    try:
        yield
    finally:
        _spent[name] += time.perf_counter() - started
        _cpu[name] += time.thread_time() - cpu
        _process[name] += time.process_time() - process
        _calls[name] += 1


def _wrap(owner: Any, attr: str, name: str) -> None:
    inner: Callable[..., Any] | None = getattr(owner, attr, None)
    if inner is None:  # an older tree (the bench runs against main's too)
        return

    def timed(*args: Any, **kwargs: Any) -> Any:
        with _timed(name):
            return inner(*args, **kwargs)

    setattr(owner, attr, timed)


def _gc_counter() -> dict[int, list[float]]:
    """Collections per generation and the seconds they took, as they happen."""
    seen: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
    started = [0.0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        spent = seen[info["generation"]]
        spent[0] += 1
        spent[1] = round(spent[1] + time.perf_counter() - started[0], 3)

    gc.callbacks.append(count)
    return seen


def _batches(corpus: Path, batch_rows: int) -> list[dict[str, Any]]:
    from ingestor.clickhouse.write import Batch
    from ingestor.errors import Location
    from ingestor.wire import decode_message
    from ingestor.worker.process import process_decoded, with_dead_letter_rows

    out: list[dict[str, Any]] = []
    # The worker's own batching: rows stay in the form it holds them (tuples where it has them).
    batch = Batch(batch_rows, 1e9, time.monotonic)
    for offset, value in enumerate(watcher_envelopes(corpus)):
        envelope = decode_message("transcript", value)
        processed = process_decoded(
            "transcript", envelope, Location("t", 0, offset), bad_line_max_bytes=4096
        )
        with_dead_letter_rows(processed)
        batch.add(processed.rows)
        if batch.size >= batch_rows:
            out.append(batch.take())
    if batch.size:
        out.append(batch.take())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.write_path", description=__doc__)
    p.add_argument("--lines", type=int, default=100_000, help="the cached corpus of this size")
    p.add_argument("--corpus", type=Path, help="a transcript tree (default: the cached corpus)")
    p.add_argument("--batch-rows", type=int, default=50_000, help="rows a write (the worker's)")
    p.add_argument("--cache", type=Path, help="keep the built batches in this pickle")
    p.add_argument(
        "--gc", choices=("on", "off", "freeze"), default="on",
        help="Python's collector during the writes: off, or the built batches frozen out of it",
    )  # fmt: skip
    p.add_argument("--profile", type=Path, help="write a cProfile of the writes here")
    args = p.parse_args(argv)

    from ingestor.clickhouse import chdb_engine, winners, write
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.clickhouse.migrations import apply_schema
    from ingestor.plain_settings import ClickHouseTarget

    began = time.perf_counter()
    if args.cache and args.cache.exists():
        batches = pickle.loads(args.cache.read_bytes())
    else:
        from bench.corpus import ensure_corpus

        batches = _batches(args.corpus or ensure_corpus(args.lines, 0)[0], args.batch_rows)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(batches))
    records = sum(len(b.get("transcript_lines", ())) for b in batches)
    print(f"{len(batches)} batches, {records:,} lines built in {time.perf_counter() - began:.1f} s")

    scratch = Path(tempfile.mkdtemp(prefix="write-path-"))
    ch = open_clickhouse(
        ClickHouseTarget(kind="chdb", database="ingestor", path=scratch / "clickhouse")
    )
    apply_schema(ch)
    _wrap(chdb_engine, "arrow_table", "arrow_table")
    _wrap(chdb_engine.ChdbClickHouse, "_insert_arrow", "chdb insert (arrow)")
    _wrap(chdb_engine.ChdbClickHouse, "query", "chdb query")
    _wrap(chdb_engine.ChdbClickHouse, "query_columns", "chdb query_columns")
    _wrap(chdb_engine.ChdbClickHouse, "query_arrow", "chdb query_arrow")
    _wrap(chdb_engine.ChdbClickHouse, "execute", "chdb execute")
    _wrap(winners, "maintain_winners", "maintain_winners")
    _wrap(write, "maintain_winners", "maintain_winners")
    _wrap(winners, "decide", "winners.decide")
    _wrap(winners, "_counted_rows", "winners._counted_rows")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    collections = _gc_counter()
    if args.gc == "off":
        gc.disable()
    elif args.gc == "freeze":
        gc.freeze()
    began = time.perf_counter()
    for n, rows in enumerate(batches):
        with _timed("write_batch"):
            write.write_batch(ch, rows, token=f"bench:{n}", retries=0, backoff_s=0.1, changes=[])
    seconds = time.perf_counter() - began
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    gc.enable()
    print(f"write_batch: {records:,} lines in {seconds:.2f} s = {records / seconds:,.0f} lines/s")
    print(f"  Python's collector: {dict(collections)} (generation: collections, seconds)")
    for name, spent in sorted(_spent.items(), key=lambda kv: -kv[1]):
        print(
            f"  {name:24} {spent:6.2f} s {100 * spent / seconds:5.1f} %  this thread's CPU "
            f"{_cpu[name]:6.2f} s  the process's {_process[name]:6.2f} s  {_calls[name]} calls"
        )
    counted = ch.query("SELECT sum(sign), count() FROM counted_usage")[0]
    print(f"counted_usage: sum(sign) {counted[0]:,}, rows {counted[1]:,}")
    ch.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
