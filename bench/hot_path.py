"""``python -m bench.hot_path``: the worker's stream side alone, per transcript line, in CPU.

Envelopes are built as the watcher builds them (``parse_chunk`` with columns -> ``envelopes``,
``envelope_max_records`` a message), then handled as the transcript
agent handles them without Faust: ``decode_message``, ``process_decoded``, the session table
(``SessionAgg`` decode / apply / encode, in a dict), ``with_dead_letter_rows`` and
``Batch.add``. Each step's thread CPU is summed; the figure to compare is CPU seconds per
100k lines (the machine is shared, so wall time follows its load).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench.envelopes import watcher_envelopes

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__)
    p.add_argument("--lines", type=int, default=300_000, help="the cached corpus of this size")
    p.add_argument("--corpus", type=Path, help="a transcript tree (default: the cached corpus)")
    p.add_argument("--max-records", type=int, default=500, help="records an envelope")
    p.add_argument("--batch-rows", type=int, default=50_000, help="rows a batch is taken at")
    p.add_argument("--cache", type=Path, help="keep the built envelopes in this pickle")
    p.add_argument("--profile", type=Path, help="write a cProfile of the handling here")
    args = p.parse_args(argv)

    from ingestor.clickhouse.write import Batch
    from ingestor.errors import Location
    from ingestor.wire import decode_message
    from ingestor.worker.process import process_decoded, with_dead_letter_rows

    began = time.perf_counter()
    if args.cache and args.cache.exists():
        messages = pickle.loads(args.cache.read_bytes())
    else:
        if args.corpus is None:
            from bench.corpus import ensure_corpus

            args.corpus = ensure_corpus(args.lines, 0)[0]
        messages = list(watcher_envelopes(args.corpus, args.max_records))
        if args.cache:
            args.cache.write_bytes(pickle.dumps(messages))
    print(f"{len(messages):,} envelopes built in {time.perf_counter() - began:.1f} s")

    cpu: dict[str, float] = defaultdict(float)
    batch = Batch(args.batch_rows, 1e9, time.monotonic)
    lines = 0
    clock = time.thread_time
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    gc.collect()
    started = clock()
    for offset, value in enumerate(messages):
        t0 = clock()
        envelope = decode_message("transcript", value)
        t1 = clock()
        processed = process_decoded(
            "transcript", envelope, Location("t", 0, offset), bad_line_max_bytes=4096
        )
        t3 = clock()
        with_dead_letter_rows(processed)
        batch.add(processed.rows, len(value))
        if batch.due():
            batch.take()
        t4 = clock()
        lines += envelope.count
        cpu["decode_message"] += t1 - t0
        cpu["process_decoded"] += t3 - t1
        cpu["batch"] += t4 - t3
    total = clock() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    per = 100_000 / max(lines, 1)
    print(f"{lines:,} lines: {total:.2f} CPU-s, {total * per:.2f} CPU-s per 100k lines")
    for name, spent in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {name:16} {spent:6.2f} CPU-s  {spent * per:5.2f} per 100k  "
              f"{100 * spent / total:5.1f} %")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
