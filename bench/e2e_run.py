"""``bench.e2e``'s run: an embedded Tansu broker, a fresh chdb directory, then ``ingestor worker``
and ``ingestor watch --once`` as child processes, until the worker has processed every line the
watcher sent and holds nothing unstored.

Each child's CPU (user + sys, all threads) and peak RSS (VmHWM) are sampled just before it stops
(the watcher's CPU from ``wait4`` when it exits). The children are started, polled and stopped
with ``ingestor.local.stack``, as ``ingestor up`` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpus import ROOT
from bench.measure import Usage, proc_usage, run_measure
from ingestor.local.stack import free_port, prepare, spawn_ingestor, stop_processes, worker_stats

__all__ = ["Child", "Run", "end_to_end"]

# The worker's per-line outcomes (as ``ingestor up`` counts progress): their sum is lines processed.
LINE_OUTCOMES = ("usage", "no_usage", "dead_letter")
POLL_S = 0.1
STOP_GRACE_S = 30.0
QUIET_S = 10.0


class Child:
    """One ``ingestor`` subcommand in its own process, reaped with ``wait4`` for its usage."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self.proc = spawn_ingestor(args, self.log_path, env=env, cwd=cwd)
        self.final: Usage | None = None  # from wait4, once reaped
        self.last: Usage | None = None  # the latest /proc sample while alive

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        """The exit code once the process ended (reaping it and keeping its usage), else None."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        with contextlib.suppress(OSError):
            self._sample()
        pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        main = self.last.main_thread_cpu_s if self.last else None  # last sample before exit
        # Not ru_maxrss: Linux carries the high-water mark across exec, so a child forked from
        # this process (which holds the reference) reports our size. VmHWM is the new image's.
        peak = self.last.peak_rss_mb if self.last else ru.ru_maxrss / 1024
        self.final = Usage(ru.ru_utime + ru.ru_stime, peak, main)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode

    def _sample(self) -> None:
        sample = proc_usage(self.pid)
        if sample.peak_rss_mb > 0 or self.last is None:  # a zombie's status has no VmHWM
            self.last = sample

    def usage(self) -> Usage:
        """Usage now: exact after exit, else sampled from /proc."""
        if self.poll() is None:
            with contextlib.suppress(OSError):
                self._sample()
        if self.final is not None:
            return self.final
        return self.last or Usage(0.0, 0.0)

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped: the pid is still this child's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Like ``Popen.wait``, reaping with ``wait4`` (``poll``) so that the usage is kept."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.proc.args, timeout or 0.0)
            time.sleep(0.05)
        return code

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; reaps the process. Idempotent."""
        stop_processes([self], STOP_GRACE_S)

    def tail(self, n: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-n:].decode(errors="replace")


def read_json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class Run:
    """What the end-to-end phase measured (times from spawning the children)."""

    bootstrap: str = ""
    wall_s: float = 0.0
    worker_first_line_s: float | None = None
    watcher_exit_s: float | None = None
    lines_read: int = 0
    processed: int = 0
    envelopes: int = 0
    rows_stored: int = 0
    counts: dict[str, int] | None = None
    flushes: int = 0
    watcher: Usage | None = None
    worker: Usage | None = None
    worker_at_first_line: Usage | None = None
    worker_at_watcher_exit: Usage | None = None
    processed_at_watcher_exit: int = 0
    broker_cpu_s: float | None = None
    error: str | None = None
    note: str | None = None
    raw_consume: dict[str, Any] | None = None
    screenshot: str | None = None  # the dashboard's PNG, with --screenshot


def end_to_end(
    corpus: Path,
    run_dir: Path,
    deadline: float,
    batch_max_rows: int | None,
    log: Any,
    screenshot: Path | None = None,
) -> Run:
    from ingestor.local.tansu import TansuBroker
    from ingestor.settings import load_settings

    run = Run()
    data_dir, chdb_dir = run_dir / "data", run_dir / "chdb"
    data_dir.mkdir(parents=True)
    port = free_port()
    env = {
        **os.environ,
        "INGESTOR_DATA_DIR": str(data_dir),
        "INGESTOR_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
        "INGESTOR_WEB_PORT": str(port),
        "INGESTOR_WEB_HOST": "127.0.0.1",
    }
    env.pop("INGESTOR_KAFKA_BOOTSTRAP", None)
    if batch_max_rows is not None:
        env["INGESTOR_BATCH_MAX_ROWS"] = str(batch_max_rows)
    settings = load_settings(
        data_dir=data_dir, clickhouse_url=f"chdb://{chdb_dir}", web_port=port, kafka_bootstrap=None
    )
    watch_stats = data_dir / "watch-stats.json"
    children: list[Child] = []
    with TansuBroker.from_settings(settings) as broker:
        run.bootstrap = broker.bootstrap
        prepare(settings, run.bootstrap)  # closes chdb again: the worker opens it next
        broker_pid = broker.pid
        broker_cpu0 = proc_usage(broker_pid).cpu_s if broker_pid else 0.0
        log(f"broker {run.bootstrap}; chdb {chdb_dir}; worker web :{port}")
        try:
            t0 = time.perf_counter()
            worker = Child(
                "worker", ["worker", "--bootstrap", run.bootstrap, "--tansu"], env=env, cwd=run_dir
            )
            children.append(worker)
            watcher = Child(
                "watcher",
                ["watch", "--bootstrap", run.bootstrap, "--once", "--stats", str(watch_stats)]
                + [str(corpus)],
                env=env,
                cwd=run_dir,
            )
            children.append(watcher)
            stats: dict[str, Any] = {}
            last_log = quiet_since = 0.0
            quiet_state = (-1, -1)
            while True:
                time.sleep(POLL_S)
                now = time.perf_counter()
                status = watcher.poll()
                if status is not None and run.watcher_exit_s is None:
                    run.watcher_exit_s = now - t0
                    if status != 0:
                        raise RuntimeError(f"watcher exited with {status}:\n{watcher.tail()}")
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited with {worker.poll()}:\n{worker.tail()}")
                stats = worker_stats("127.0.0.1", port) or stats
                counts = stats.get("counts", {})
                run.processed = sum(int(counts.get(k, 0)) for k in LINE_OUTCOMES)
                if run.processed and run.worker_first_line_s is None:
                    run.worker_first_line_s = now - t0
                    run.worker_at_first_line = worker.usage()
                if run.watcher_exit_s is not None and run.worker_at_watcher_exit is None:
                    run.worker_at_watcher_exit = worker.usage()
                    run.processed_at_watcher_exit = run.processed
                watch = read_json(watch_stats)
                run.lines_read = int(watch.get("lines_read", 0))
                run.envelopes = int(watch.get("envelopes_sent", 0))
                stored = int(counts.get("rows_stored", 0))
                settled = (
                    status == 0
                    and run.lines_read > 0
                    and run.processed >= run.lines_read
                    and stats.get("pending_rows") == 0
                    and stats.get("pending_messages") == 0
                )
                # pending_* drop to 0 when a flush *starts*: wait for the insert to be confirmed.
                # Every line becomes one row (transcript line or dead letter) besides summaries.
                if settled and stored >= run.lines_read:
                    run.wall_s = now - t0
                    break
                # Fallback should that invariant change: nothing moved for QUIET_S.
                progress = (stored, int(stats.get("flushes", 0)))
                if not settled or progress != quiet_state:
                    quiet_state, quiet_since = progress, now
                elif now - quiet_since >= QUIET_S:
                    run.wall_s = quiet_since - t0
                    run.note = f"stopped after {QUIET_S:.0f}s without progress ({stored:,} rows)"
                    break
                if now - last_log >= 5:
                    last_log = now
                    log(
                        f"  {now - t0:6.1f}s  read {run.lines_read:>9,}  "
                        f"processed {run.processed:>9,}  stored {counts.get('rows_stored', 0):>9,}"
                    )
                if time.time() > deadline:
                    raise TimeoutError("overall timeout reached before every line was stored")
            run.worker = worker.usage()
            run.watcher = watcher.usage()
            if broker_pid:
                run.broker_cpu_s = proc_usage(broker_pid).cpu_s - broker_cpu0
            run.counts = {str(k): int(v) for k, v in stats.get("counts", {}).items()}
            run.rows_stored = run.counts.get("rows_stored", 0)
            run.flushes = int(stats.get("flushes", 0))
            if screenshot is not None:  # after the figures were taken, before the worker stops
                run.screenshot = dashboard_screenshot(port, screenshot, deadline, log)
        except (RuntimeError, TimeoutError) as exc:
            run.error = str(exc)
            for child in children:
                if run.worker is None and child.name == "worker":
                    run.worker = child.usage()
                if run.watcher is None and child.name == "watcher":
                    run.watcher = child.usage()
        finally:
            for child in reversed(children):
                child.stop()
        if run.error is None:
            log("raw_consume ceiling (fresh process) ...")
            run.raw_consume = run_measure(
                ["raw", run.bootstrap, settings.topic("transcripts"), str(run.envelopes)],
                min(600.0, deadline - time.time()),
            )
    return run


def dashboard_screenshot(port: int, out: Path, deadline: float, log: Any) -> str | None:
    """``python -m bench.screenshot`` against the worker's dashboard (its own process: Playwright
    runs an event loop); the PNG's path, or None (the reason logged: a bench never fails on it)."""
    out = out.resolve()
    log(f"dashboard screenshot -> {out} ...")
    timeout = max(30.0, min(600.0, deadline - time.time()))
    url = f"http://127.0.0.1:{port}/dashboard/"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.screenshot", url, str(out), "--timeout", str(timeout)],
            cwd=ROOT, capture_output=True, text=True, timeout=timeout + 60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        log("  no screenshot: timed out")
        return None
    if done.returncode != 0:
        log(f"  {done.stderr.strip()[-500:]}")
        return None
    return str(out)
