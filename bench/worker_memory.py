"""``python -m bench.worker_memory``: where the worker's memory goes, without Kafka or Faust.

The worker's path in one process: files -> ``parse_chunk`` (the watcher's) -> envelopes ->
``process_decoded`` -> ``write_batch`` into a fresh chdb, printing the RSS as the lines go by.
The worker holds nothing of the history (the winners' changes come back from each store), so
the RSS should not grow with the lines.

At the end it prints the memory ClickHouse tracks and what ``SYSTEM JEMALLOC PURGE`` gives back.
Figures only; a corpus from ``bench/out/corpus`` (``make
bench`` caches them) or ``--corpus DIR``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.corpus import ensure_corpus
from bench.envelopes import watcher_envelopes

__all__ = ["main"]


def _rss_mb() -> tuple[int, int]:
    """(current, peak) resident MB of this process."""
    now = peak = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) // 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) // 1024
    return now, peak


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.worker_memory", description=__doc__)
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--corpus", type=Path, help="a transcript tree (default: the cached corpus)")
    p.add_argument("--batch-rows", type=int, default=50_000, help="rows a write (the worker's)")
    args = p.parse_args(argv)

    start = _rss_mb()[0]
    import chdb  # noqa: F401 - the engine's own baseline, measured before anything else

    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.clickhouse.migrations import apply_schema
    from ingestor.clickhouse.write import Batch, write_batch
    from ingestor.errors import Location
    from ingestor.plain_settings import ClickHouseTarget
    from ingestor.wire import decode_message
    from ingestor.worker.process import process_decoded, with_dead_letter_rows

    engine = _rss_mb()[0]
    corpus = args.corpus or ensure_corpus(args.lines, 0)[0]
    scratch = Path(tempfile.mkdtemp(prefix="worker-memory-"))
    ch = open_clickhouse(
        ClickHouseTarget(kind="chdb", database="ingestor", path=scratch / "clickhouse")
    )
    apply_schema(ch)
    print(f"RSS MB: python {start}, + import chdb {engine}, + schema {_rss_mb()[0]}")
    print(f"{args.batch_rows:,} rows a write; corpus {corpus}")

    # The worker's own batching: rows stay in the form it holds them (columns where it has them).
    batch = Batch(args.batch_rows, 1e9, time.monotonic)
    lines = flushes = 0
    began = time.perf_counter()
    report_every = max(args.lines // 10, 1)
    next_report = report_every
    for offset, value in enumerate(watcher_envelopes(corpus, 300)):
        envelope = decode_message("transcript", value)
        out = process_decoded(
            "transcript", envelope, Location("t", 0, offset), bad_line_max_bytes=4096
        )
        with_dead_letter_rows(out)
        batch.add(out.rows)
        lines += envelope.count
        if batch.size >= args.batch_rows:
            flushes += 1
            write_batch(
                ch, batch.take(), token=f"bench:{flushes}", retries=0, backoff_s=0.1, changes=[]
            )
        if lines >= next_report:
            next_report += report_every
            now, peak = _rss_mb()
            print(
                f"  {lines:>9,} lines {time.perf_counter() - began:6.1f} s  RSS {now:5} MB  "
                f"peak {peak:5} MB"
            )
    if batch.size:
        write_batch(ch, batch.take(), token="bench:last", retries=0, backoff_s=0.1, changes=[])
    gc.collect()
    now, peak = _rss_mb()
    seconds = time.perf_counter() - began
    print(f"end: {lines:,} lines in {seconds:.1f} s; RSS {now} MB, peak {peak} MB")
    tracked = ch.query("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'")
    print(f"  ClickHouse tracks {int(tracked[0][0]) // 2**20 if tracked else '?'} MB")
    ch.execute("SYSTEM JEMALLOC PURGE")
    print(f"  after SYSTEM JEMALLOC PURGE: RSS {_rss_mb()[0]} MB")
    ch.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
