"""``python -m bench.e2e --lines N``: the whole pipeline on a generated corpus, with its ceilings.

One run, all on the same files:

1. a corpus of ``N`` lines from ``ingestor.corpus.generate`` (cached under ``bench/out/corpus``);
2. end to end: an embedded Tansu broker, a fresh chdb directory, then ``ingestor worker`` and
   ``ingestor watch --once`` as child processes, until the worker has processed every line the
   watcher sent and holds nothing unstored. Each child's CPU (user + sys, all threads) and peak
   RSS (VmHWM) are sampled just before it stops (the watcher's CPU from ``wait4`` when it exits);
3. correctness: the stored daily report (``ingestor.report.build``) against the file-reading
   oracle ``Reference.load(corpus).daily()`` (which the parity tests hold equal to ccusage);
4. ceilings, each in a fresh process: the engine alone (RSS baseline), a bare aiokafka consumer
   on the topic the watcher filled, and chdb reading the files directly.

Prints an aligned table and writes the figures to ``bench/out/last.json``. Figures only: nothing
here fails on a slow run (the exit status is non-zero only when the pipeline itself failed).

Step 2 is ``bench/e2e_run.py``, the figures and the table ``bench/e2e_render.py``; this module
checks the result and runs the steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from bench.corpus import OUT, ensure_corpus
from bench.e2e_render import figures, render
from bench.e2e_run import end_to_end
from bench.measure import run_measure

__all__ = ["main"]


# ---------------------------------------------------------------------- correctness


@dataclass
class Check:
    exact: bool = False
    days: int = 0
    reference_days: int = 0
    first_mismatch: str | None = None
    stored_total_tokens: int = 0
    reference_total_tokens: int = 0
    stored_cost: str = "0"
    reference_cost: str = "0"
    reference_s: float = 0.0
    reference_counted: int = 0
    transcript_rows: int = 0
    dead_letter_rows: int = 0


_FIELDS = (
    ("inputTokens", "input_tokens"),
    ("outputTokens", "output_tokens"),
    ("cacheCreationTokens", "cache_creation_tokens"),
    ("cacheReadTokens", "cache_read_tokens"),
    ("totalCost", "cost"),
)


def check(corpus: Path, chdb_dir: Path) -> Check:
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.corpus.reference import Reference
    from ingestor.plain_settings import ClickHouseTarget
    from ingestor.report import ReportRequest, build

    out = Check()
    ch = open_clickhouse(ClickHouseTarget(kind="chdb", database="ingestor", path=chdb_dir))
    try:
        report = build(ch, ReportRequest("daily", tz="UTC"))
        stored = {row["date"]: row for row in report["daily"]}
        out.transcript_rows = int(ch.query("SELECT count() FROM transcript_lines FINAL")[0][0])
        out.dead_letter_rows = int(ch.query("SELECT count() FROM dead_letters FINAL")[0][0])
    finally:
        ch.close()
    started = time.perf_counter()
    ref = Reference.load(corpus)
    expected = ref.daily()
    out.reference_s = time.perf_counter() - started
    out.reference_counted = ref.accounting.counted
    out.days, out.reference_days = len(stored), len(expected)
    out.stored_total_tokens = sum(int(r["totalTokens"]) for r in stored.values())
    out.reference_total_tokens = sum(t.total_tokens for t in expected.values())
    out.stored_cost = str(sum((Decimal(r["totalCost"]) for r in stored.values()), Decimal(0)))
    out.reference_cost = str(sum((t.cost for t in expected.values()), Decimal(0)))
    for day in sorted(set(stored) | set(expected)):
        got, want = stored.get(day), expected.get(day)
        if got is None or want is None:
            where = "stored only" if want is None else "reference only"
            out.first_mismatch = f"{day}: {where}"
            break
        for report_key, ref_attr in _FIELDS:
            g, w = got[report_key], getattr(want, ref_attr)
            if (Decimal(g) if ref_attr == "cost" else int(g)) != w:
                out.first_mismatch = f"{day} {report_key}: stored {g}, reference {w}"
                break
        if out.first_mismatch:
            break
    out.exact = out.first_mismatch is None and bool(expected)
    return out


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000, help="corpus size (default 1,000,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800.0, help="overall bound in seconds")
    p.add_argument("--batch-max-rows", type=int, help="INGESTOR_BATCH_MAX_ROWS for the worker")
    p.add_argument(
        "--screenshot", type=Path, metavar="PNG",
        help="also write the worker's dashboard to PNG once the corpus is stored (Chromium)",
    )  # fmt: skip
    args = p.parse_args(argv)
    deadline = time.time() + args.timeout

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    OUT.mkdir(parents=True, exist_ok=True)
    log(f"corpus: {args.lines:,} lines, seed {args.seed} ...")
    corpus, corpus_stats, generated_s = ensure_corpus(args.lines, args.seed)
    log(f"corpus at {corpus}" + (f" (generated in {generated_s:.1f}s)" if generated_s else ""))
    log("engine baseline (fresh process) ...")
    baseline = run_measure(["baseline"], 120.0)
    run_dir = OUT / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    log("end to end ...")
    run = end_to_end(corpus, run_dir, deadline, args.batch_max_rows, log, args.screenshot)
    fig = figures(args.lines, args.seed, corpus_stats, baseline, run)
    fig["ceilings"] = {"raw_consume": run.raw_consume}
    if run.error is None:
        log("correctness: report vs reference ...")
        fig["check"] = asdict(check(corpus, run_dir / "chdb"))
        log("chdb_direct ceiling (fresh process) ...")
        fig["ceilings"]["chdb_direct"] = run_measure(
            ["chdb", str(corpus)], min(900.0, deadline - time.time())
        )
    fig["corpus_generated_s"] = generated_s
    (OUT / "last.json").write_text(json.dumps(fig, indent=1, default=str))
    print(render(fig), flush=True)
    return 1 if run.error else 0


if __name__ == "__main__":
    sys.exit(main())
