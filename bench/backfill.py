"""``python -m bench.backfill``: ``ingestor up --once`` against ccusage, same files, same run.

For each corpus size (``--lines`` or ``$LINES``, comma-separated; default 100k, 300k and 1M lines —
add 5000000 for the 5M row), on a corpus from ``ingestor.corpus.generate`` cached under
``bench/out/corpus``:

* **backfill**: ``ingestor up --once DIR`` on a cold data dir, from start to every line stored
  (start-up, schema, broker and the run's summary included: what a user waits for), against
  ``ccusage claude daily --json --offline`` on the same files, and the ratio;
* **fixed cost**: ``ingestor up --once`` on an empty directory, twice;
* **memory**: the peak RSS of every process of the tree (``bench/measure.py``) against the
  baseline of the embedded engine (python + ``import chdb`` + one session) measured in this run;
* **scaling**: lines/s and peak RSS per size;
* **reports** (``bench/reports.py``; ``--reports none`` skips them): after the largest size's
  ingest, daily, monthly and session from the CLI and from a running worker against ccusage's.

ccusage 20.0.24 comes from ``ingestor.corpus.ccusage`` (npm, installed once into the cache dir, as
for the parity tests); without npm the bench says so and prints ours alone. Figures only: a slow
run fails nothing; the exit status is non-zero only when ``up`` failed or ClickHouse does not hold
every line (stored or dead-lettered).
Writes the figures to ``bench/out/backfill.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.corpus import OUT, ROOT, ensure_corpus
from bench.measure import Tree, measure, run_measure
from bench.render import render
from ingestor.local.stack import free_port

__all__ = ["main"]

DEFAULT_LINES = "100000,300000,1000000"
_READ = re.compile(rb"this run: read ([\d,]+) lines, stored ([\d,]+) records, ([\d,]+) dead")
# ClickHouse's own count at the end: the run's counters are carried across restarted children
# and can miss what a stopped one sent last; this cannot.
_IN_ALL = re.compile(rb"in all: ([\d,]+) transcript lines stored, ([\d,]+) dead letters")


def _up_env(data_dir: Path, tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    env["INGESTOR_DATA_DIR"] = str(data_dir)
    env["INGESTOR_WEB_PORT"] = str(free_port())
    env["INGESTOR_WEB_HOST"] = "127.0.0.1"
    # Days cut in UTC, as ccusage's `-z UTC`: `ingestor report` with no `-z` is then the same
    # request as with it (the reports `up --once` keeps as it ends are the flagless ones).
    env["TZ"] = "UTC"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def up_once(
    directory: Path, scratch: Path, timeout_s: float, tree: Path = ROOT, *, keep: bool = False
) -> dict[str, Any]:
    """``ingestor up --once directory`` on a fresh data dir under ``scratch``: the measured tree
    and the run's own counts. ``keep``: leave the data dir (``scratch / "data"``) for reports."""
    data_dir = scratch / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "ingestor.cli.main", "up", "--once", str(directory)]
    # Not from the repository: `python -m` puts the working directory first on sys.path, which
    # would run this checkout's ingestor whatever --tree says (and Faust writes a dir there).
    measured = measure(cmd, env=_up_env(data_dir, tree), timeout_s=timeout_s, cwd=scratch)
    found = _READ.search(measured.stdout)
    out = _tree(measured)
    in_all = _IN_ALL.search(measured.stdout)
    if found and in_all:
        read, stored, dead = (int(g.replace(b",", b"")) for g in found.groups())
        out.update(lines_read=read, records_stored=stored, dead_letters=dead)
        lines, dead_all = (int(g.replace(b",", b"")) for g in in_all.groups())
        out.update(lines_in_clickhouse=lines + dead_all)
    else:
        out["error"] = measured.stdout.decode(errors="replace")[-2000:]
    if not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def reports(
    root: Path, scratch: Path, binary: Path | None, timeout_s: float, tree: Path, log: Any
) -> dict[str, Any]:
    """``bench/reports.py`` over the data dir ``up_once(..., keep=True)`` left in ``scratch``."""
    from bench.reports import ccusage_reports, cli_reports, served_reports

    env = _up_env(scratch / "data", tree)
    out: dict[str, Any] = {}
    if binary is not None:
        log("  reports: ccusage daily, monthly, session ...")
        out["ccusage"] = ccusage_reports(binary, root, timeout_s)
    log("  reports: ingestor report (kept by up; the CLI opens the engine; kept by it) ...")
    out["cli"] = cli_reports(env, scratch, timeout_s)
    log("  reports: served by the worker of a running `ingestor up` ...")
    out["served"] = served_reports(root / "projects", env, scratch, timeout_s)
    shutil.rmtree(scratch / "data", ignore_errors=True)
    return out


def ccusage_daily(binary: Path, root: Path, timeout_s: float) -> dict[str, Any]:
    """``ccusage claude daily --json --offline`` over ``root/projects``, measured."""
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(root)}
    cmd = [str(binary), "claude", "daily", "--json", "--offline", "-z", "UTC"]
    return _tree(measure(cmd, env=env, timeout_s=timeout_s))


def _tree(tree: Tree) -> dict[str, Any]:
    return {
        "returncode": tree.returncode,
        "wall_s": tree.wall_s,
        "peak_rss_mb": tree.peak_by_role(),
        "procs": [asdict(p) for p in tree.procs],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__.split("\n")[0])
    p.add_argument(
        "--lines",
        default=os.environ.get("LINES") or DEFAULT_LINES,
        help=f"corpus sizes, comma-separated (default $LINES or {DEFAULT_LINES})",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800.0, help="bound of one run in seconds")
    p.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="the ingestor source tree `up` runs from (default this one; another checkout "
        "measures a before/after in one run of the same bench)",
    )
    p.add_argument(
        "--reports",
        choices=("largest", "none"),
        default="largest",
        help="time daily, monthly and session reports after the largest size's ingest (default)",
    )
    args = p.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in str(args.lines).split(",") if s.strip()]

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    from ingestor.corpus.ccusage import CCUSAGE_VERSION, CcusageUnavailable, ccusage_binary

    OUT.mkdir(parents=True, exist_ok=True)
    fig: dict[str, Any] = {"ccusage_version": CCUSAGE_VERSION, "sizes": [], "tree": str(args.tree)}
    fig["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        binary: Path | None = ccusage_binary()
        fig["ccusage"] = str(binary)
    except CcusageUnavailable as why:
        binary = None
        fig["ccusage_missing"] = str(why)
        log(f"ccusage: {why}; printing ours alone")
    log("engine baseline (python + chdb, fresh process) ...")
    fig["baseline"] = run_measure(["baseline"], 120.0)
    failed = False
    with tempfile.TemporaryDirectory(prefix="ingestor-bench-") as tmp:
        scratch = Path(tmp)
        empty = scratch / "empty" / "projects"
        empty.mkdir(parents=True)
        fig["fixed"] = []
        for attempt in (1, 2):
            log(f"fixed cost: up --once on an empty dir ({attempt}/2) ...")
            fig["fixed"].append(up_once(empty, scratch, args.timeout, args.tree))
        for lines in sizes:
            log(f"corpus: {lines:,} lines, seed {args.seed} ...")
            root, stats, _ = ensure_corpus(lines, args.seed)
            size: dict[str, Any] = {"lines": lines, "corpus": stats}
            if binary is not None:
                log("  ccusage daily ...")
                ccusage_daily(binary, root, args.timeout)  # a first read warms the page cache
                size["ccusage"] = ccusage_daily(binary, root, args.timeout)
            log("  ingestor up --once (cold data dir) ...")
            timed_reports = args.reports == "largest" and lines == max(sizes)
            size["ours"] = ours = up_once(
                root / "projects", scratch, args.timeout, args.tree, keep=timed_reports
            )
            stored = ours.get("lines_in_clickhouse")
            if ours.get("returncode") != 0 or stored != stats.get("lines", lines):
                failed = True
            elif timed_reports:
                size["reports"] = reports(root, scratch, binary, args.timeout, args.tree, log)
            fig["sizes"].append(size)
            (OUT / "backfill.json").write_text(json.dumps(fig, indent=1, default=str))
    print(render(fig), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
