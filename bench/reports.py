"""Reports over an ingested corpus against ccusage's, same files, same run (``bench/backfill.py``).

Issue #9's target: daily, monthly and session over 1M lines answered by the running worker (and by
the CLI) in ≤ 1/20 of ccusage's time. Three ways are timed, each report twice (the better kept):

* **ccusage**: ``ccusage claude KIND --json --offline -z UTC``, which reads every file again;
* **cli**: ``ingestor report KIND --json -z UTC`` with no worker running, a fresh process: first
  right after ``up --once`` (answered from what it kept as it ended: the usual reports);
  then with no answer kept, so it opens the embedded engine itself (python start, imports, the
  engine's open, the query), as a request ``up`` did not keep would; then asked again,
  answered from the answer it kept on disk (no engine);
* **served**: the same command while ``ingestor up`` runs over the data dir, answered by its
  worker; and the worker's own answer to ``GET /report/KIND/`` (no process start): built on
  the first ask, kept for the next ones while nothing is stored (both are printed).

Figures only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.measure import interrupt, measure

__all__ = ["KINDS", "ccusage_reports", "cli_reports", "served_reports"]

KINDS = ("daily", "monthly", "session")
_TRIES = 2


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("returncode") == 0]
    if not ok:
        return runs[-1]
    return {**min(ok, key=lambda r: r["wall_s"]), "walls_s": [r["wall_s"] for r in runs]}


def _timed(cmd: list[str], env: dict[str, str], timeout_s: float, cwd: Path) -> dict[str, Any]:
    tree = measure(cmd, env=env, timeout_s=timeout_s, cwd=cwd)
    out: dict[str, Any] = {"returncode": tree.returncode, "wall_s": tree.wall_s}
    if tree.returncode != 0:
        out["error"] = tree.stdout.decode(errors="replace")[-1000:]
    return out


def ccusage_reports(binary: Path, root: Path, timeout_s: float) -> dict[str, Any]:
    """Each of ``KINDS`` from ccusage over ``root/projects``."""
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(root)}
    return {
        kind: _best(
            [
                _timed(
                    [str(binary), "claude", kind, "--json", "--offline", "-z", "UTC"],
                    env,
                    timeout_s,
                    root,
                )
                for _ in range(_TRIES)
            ]
        )
        for kind in KINDS
    }


def _report_cmd(kind: str) -> list[str]:
    return [sys.executable, "-m", "ingestor.cli.main", "report", kind, "--json", "-z", "UTC"]


def cli_reports(env: dict[str, str], scratch: Path, timeout_s: float) -> dict[str, Any]:
    """Each of ``KINDS`` from ``ingestor report`` with no worker running (``env`` names the data
    dir): the first ask after ``up --once`` (once: the answer it kept as it ended), building
    the answer (the engine opened, no answer kept), and asked again (the answer it kept on disk,
    ``report/kept.py``)."""
    kept = Path(env["INGESTOR_DATA_DIR"]) / "answers"
    # Before anything opens the engine, which may merge parts and so change the state kept under.
    by_up = any(kept.glob("*.answer"))  # else the first asks built their answers
    first = {
        kind: {**_timed(_report_cmd(kind), env, timeout_s, scratch), "kept_by_up": by_up}
        for kind in KINDS
    }
    out: dict[str, Any] = {}
    for kind in KINDS:
        built = []
        for _ in range(_TRIES):
            shutil.rmtree(kept, ignore_errors=True)
            built.append(_timed(_report_cmd(kind), env, timeout_s, scratch))
        again = [_timed(_report_cmd(kind), env, timeout_s, scratch) for _ in range(_TRIES)]
        out[kind] = {**_best(built), "kept": _best(again), "first": first[kind]}
    return out


def _get(url: str, timeout_s: float) -> float | None:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            reply.read()
    except OSError:
        return None
    return time.perf_counter() - started


def served_reports(
    directory: Path, env: dict[str, str], scratch: Path, timeout_s: float
) -> dict[str, Any]:
    """``ingestor up directory`` over the data dir ``env`` names (already holding the corpus);
    once its worker answers, each of ``KINDS`` from the CLI through it and from the worker."""
    base = f"http://{env['INGESTOR_WEB_HOST']}:{env['INGESTOR_WEB_PORT']}"
    up = subprocess.Popen(
        [sys.executable, "-m", "ingestor.cli.main", "up", str(directory)],
        env=env,
        cwd=scratch,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + timeout_s
        first = None
        while first is None and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.5)
            # Not a request timed below: the worker keeps its answer (report/answers.py).
            first = _get(f"{base}/report/daily/?order=desc", timeout_s=60)
        if first is None:
            return {"error": f"the worker of `up` did not answer (exit {up.poll()})"}
        out["first_daily_s"] = first  # the first answer of a worker just up: caches cold
        for kind in KINDS:
            worker = [_get(f"{base}/report/{kind}/", 60) for _ in range(_TRIES)]
            cli = [_timed(_report_cmd(kind), env, timeout_s, scratch) for _ in range(_TRIES)]
            out[kind] = {
                "worker_s": min((w for w in worker if w is not None), default=None),
                # The first ask builds the answer; the next ones get it kept until a store.
                "worker_built_s": worker[0],
                "cli": _best(cli),
            }
        return out
    finally:
        interrupt(up)
