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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]  # the repository: `-m bench._ceiling` runs from here
OUT = ROOT / "bench" / "out"
TARGET_LINES_PER_S = 50_000
TARGET_RSS_ABOVE_BASELINE_MB = 200.0
CCUSAGE_LINES_PER_S = 110_000  # ccusage on the same files, from the issue
# The worker's per-line outcomes (as ``ingestor up`` counts progress): their sum is lines processed.
LINE_OUTCOMES = ("usage", "no_usage", "dead_letter")
POLL_S = 0.1
STOP_GRACE_S = 30.0
QUIET_S = 10.0


# ---------------------------------------------------------------------- process measurement


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + sys, every thread) and peak RSS in MB of one process."""

    cpu_s: float
    peak_rss_mb: float
    main_thread_cpu_s: float | None = None  # the Python event-loop thread alone


def _stat_cpu(path: Path) -> float:
    stat = path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_usage(pid: int) -> Usage:
    """``/proc/PID/stat`` (utime + stime), the main thread's, and ``/proc/PID/status`` VmHWM."""
    cpu = _stat_cpu(Path(f"/proc/{pid}/stat"))
    main = _stat_cpu(Path(f"/proc/{pid}/task/{pid}/stat"))
    hwm_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm_kb = int(line.split()[1])
    return Usage(cpu, hwm_kb / 1024, main)


class Child:
    """One ``ingestor`` subcommand in its own process, reaped with ``wait4`` for its usage."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path) -> None:
        from ingestor.local.tansu import die_with_parent_hook

        self.name = name
        self.log_path = cwd / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingestor.cli.main", *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,  # Faust writes its data dir into the working directory
            preexec_fn=die_with_parent_hook(),
        )
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

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; reaps the process. Idempotent."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                while self.poll() is None:
                    time.sleep(0.05)
        if not self._log.closed:
            self._log.close()

    def tail(self, n: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-n:].decode(errors="replace")


# ---------------------------------------------------------------------- corpus


def ensure_corpus(lines: int, seed: int) -> tuple[Path, dict[str, Any], float | None]:
    """The cached corpus for ``(lines, seed)``: root, its ``CorpusStats``, seconds if generated."""
    from ingestor.corpus.generate import generate

    root = OUT / "corpus" / f"lines-{lines}-seed-{seed}"
    marker = root / "corpus.json"  # written last: its presence means the tree is complete
    if marker.is_file():
        return root, dict(json.loads(marker.read_text())), None
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    stats = asdict(generate(root, lines=lines, seed=seed))
    marker.write_text(json.dumps(stats, indent=1))
    return root, stats, time.perf_counter() - started


# ---------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            body = json.loads(reply.read())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def read_json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def run_measure(args: list[str], timeout_s: float) -> dict[str, Any]:
    """``python -m bench._ceiling ARGS`` in a fresh process; its JSON, or ``{"error": …}``."""
    if timeout_s <= 0:
        return {"error": "skipped: overall timeout reached"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench._ceiling", *args],
            capture_output=True,
            timeout=timeout_s,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f}s"}
    out = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not out:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        return {"error": f"exit {done.returncode}: {(err or ['no output'])[-1]}"}
    body = json.loads(out[-1])
    return body if isinstance(body, dict) else {"error": "bad output"}


# ---------------------------------------------------------------------- end to end


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
    from ingestor.kafka.topics import create_topics
    from ingestor.local.tansu import TansuBroker
    from ingestor.settings import load_settings
    from ingestor.sink.engine import open_clickhouse
    from ingestor.sink.migrations import apply_schema

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
    stats_url = f"http://127.0.0.1:{port}/stats/"
    children: list[Child] = []
    with TansuBroker.from_settings(settings) as broker:
        run.bootstrap = broker.bootstrap
        ch = open_clickhouse(settings.clickhouse)
        try:
            apply_schema(ch)
        finally:
            ch.close()  # chdb admits one process per data directory: the worker's, next
        asyncio.run(create_topics(settings, run.bootstrap))
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
                stats = fetch_json(stats_url) or stats
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
    from ingestor.corpus.reference import Reference
    from ingestor.report import ReportRequest, build
    from ingestor.settings import ClickHouseTarget
    from ingestor.sink.engine import open_clickhouse

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


# ---------------------------------------------------------------------- report


def per_1k(cpu_s: float | None, lines: int) -> float | None:
    return None if cpu_s is None or not lines else cpu_s / (lines / 1000)


def fmt(value: float | int | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def phase(
    u0: Usage | None, u1: Usage | None, t0: float | None, t1: float | None, lines: int
) -> dict[str, float] | None:
    """Lines/s and cores busy (all threads, main thread) between two samples of one process."""
    if u0 is None or u1 is None or t0 is None or t1 is None or t1 - t0 <= 0.5:
        return None
    span = t1 - t0
    out = {"seconds": span, "lines_per_s": lines / span, "cores_busy": (u1.cpu_s - u0.cpu_s) / span}
    if u0.main_thread_cpu_s is not None and u1.main_thread_cpu_s is not None:
        out["main_thread_busy"] = (u1.main_thread_cpu_s - u0.main_thread_cpu_s) / span
    return out


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def figures(
    lines: int, seed: int, corpus_stats: dict[str, Any], baseline: dict[str, Any], run: Run
) -> dict[str, Any]:
    wall = run.wall_s or None
    lps = lines / wall if wall else None
    base_mb = baseline.get("peak_rss_mb")
    worker_rss = run.worker.peak_rss_mb if run.worker else None
    watcher_rss = run.watcher.peak_rss_mb if run.watcher else None
    above = worker_rss - base_mb if worker_rss is not None and base_mb is not None else None
    processing = wall - run.worker_first_line_s if wall and run.worker_first_line_s else None
    first, exited = run.worker_first_line_s, run.watcher_exit_s
    phases = {
        # The worker while the watcher still sends, then alone on the backlog.
        "with_watcher": phase(
            run.worker_at_first_line,
            run.worker_at_watcher_exit,
            first,
            exited,
            run.processed_at_watcher_exit,
        ),
        "alone": phase(
            run.worker_at_watcher_exit or run.worker_at_first_line,
            run.worker,
            max(first or 0.0, exited or 0.0) or None,
            wall,
            lines - run.processed_at_watcher_exit,
        ),
        "whole": phase(run.worker_at_first_line, run.worker, first, wall, lines),
    }
    return {
        "lines": lines,
        "seed": seed,
        "corpus": corpus_stats,
        "wall_s": wall,
        "lines_per_s": lps,
        "records_per_s": run.rows_stored / wall if wall else None,
        "rows_stored": run.rows_stored,
        "lines_read": run.lines_read,
        "lines_processed": run.processed,
        "envelopes": run.envelopes,
        "flushes": run.flushes,
        "worker_counts": run.counts,
        "worker_first_line_s": run.worker_first_line_s,
        "watcher_exit_s": run.watcher_exit_s,
        "watcher_lines_per_s": lines / run.watcher_exit_s if run.watcher_exit_s else None,
        "lines_per_s_after_first_line": lines / processing if processing else None,
        "watcher": {
            "cpu_s": run.watcher.cpu_s if run.watcher else None,
            "cpu_s_per_1k_lines": per_1k(run.watcher.cpu_s if run.watcher else None, lines),
            "life": phase(Usage(0.0, 0.0, 0.0), run.watcher, 0.0, run.watcher_exit_s, lines),
            "peak_rss_mb": watcher_rss,
        },
        "worker": {
            "cpu_s": run.worker.cpu_s if run.worker else None,
            "cpu_s_per_1k_lines": per_1k(run.worker.cpu_s if run.worker else None, lines),
            "phases": phases,
            "peak_rss_mb": worker_rss,
            "rss_above_engine_baseline_mb": above,
        },
        "broker": {
            "cpu_s": run.broker_cpu_s,
            "cpu_s_per_1k_lines": per_1k(run.broker_cpu_s, lines),
        },
        "engine_baseline": baseline,
        "targets": {
            "lines_per_s": TARGET_LINES_PER_S,
            "rss_above_engine_baseline_mb": TARGET_RSS_ABOVE_BASELINE_MB,
            "lines_per_s_ok": None if lps is None else lps >= TARGET_LINES_PER_S,
            "worker_rss_ok": None if above is None else above <= TARGET_RSS_ABOVE_BASELINE_MB,
            "watcher_rss_ok": (
                None if watcher_rss is None else watcher_rss <= TARGET_RSS_ABOVE_BASELINE_MB
            ),
        },
        "ccusage_lines_per_s": CCUSAGE_LINES_PER_S,
        "error": run.error,
        "note": run.note,
        "screenshot": run.screenshot,
    }


def ceiling_row(name: str, body: dict[str, Any] | None, lines: int) -> tuple[str, ...]:
    if not body or "error" in body:
        why = (body or {}).get("error", "not run")
        return (name, "—", "—", "—", "—", f"({why})")
    secs, cpu = float(body["seconds"]), float(body["cpu_seconds"])
    return (
        name,
        fmt(lines / secs if secs else None),
        fmt(secs, ".1f"),
        fmt(per_1k(cpu, lines), ".3f"),
        fmt(body.get("peak_rss_mb"), ".0f"),
        "",
    )


def table(rows: list[tuple[str, ...]], indent: str = "  ") -> str:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)]
        out.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(out)


def busy(ph: dict[str, float] | None) -> str:
    if not ph:
        return "—"
    return f"{fmt(ph['cores_busy'], '.2f')} / {fmt(ph.get('main_thread_busy'), '.2f')}"


def phase_row(name: str, ph: dict[str, float] | None) -> tuple[str, ...]:
    if not ph:
        return (name, "—", "—", "—")
    return (name, fmt(ph["seconds"], ".1f"), fmt(ph["lines_per_s"]), busy(ph))


def render(fig: dict[str, Any]) -> str:
    c, t = fig["corpus"], fig["targets"]
    w, k, b = fig["watcher"], fig["worker"], fig["broker"]
    base = fig["engine_baseline"]
    lines = fig["lines"]
    whole = k["phases"]["whole"]
    parts = [
        f"ingestor bench: {lines:,} lines, seed {fig['seed']}, {c.get('files', 0):,} files, "
        f"{c.get('bytes', 0) / 1e9:.2f} GB, {c.get('bad_lines', 0):,} malformed",
        "",
        "end to end (Tansu + `ingestor worker` + `ingestor watch --once`, chdb)",
        table(
            [
                ("wall (spawn → every line stored)", fmt(fig["wall_s"], ".1f"), "s", ""),
                (
                    "lines/s end to end",
                    fmt(fig["lines_per_s"]),
                    "",
                    f"target ≥ {TARGET_LINES_PER_S:,}  {verdict(t['lines_per_s_ok'])}",
                ),
                ("records/s (rows stored / wall)", fmt(fig["records_per_s"]), "", ""),
                ("rows stored (all tables)", fmt(fig["rows_stored"]), "", ""),
                ("lines read / processed", f"{fig['lines_read']:,} / {fig['lines_processed']:,}"),
                ("envelopes / flushes", f"{fig['envelopes']:,} / {fig['flushes']:,}"),
                ("worker first line after", fmt(fig["worker_first_line_s"], ".1f"), "s", ""),
                ("watcher done after", fmt(fig["watcher_exit_s"], ".1f"), "s", ""),
                ("watcher alone lines/s", fmt(fig["watcher_lines_per_s"]), "", ""),
                (
                    "lines/s from worker's first line",
                    fmt(fig["lines_per_s_after_first_line"]),
                    "",
                    "(excludes worker start-up)",
                ),
            ]
        ),
        "",
        table(
            [
                (
                    "per process",
                    "CPU s/1k lines",
                    "cores busy (all/main thr)",
                    "peak RSS MB",
                    "above engine",
                ),
                (
                    "watcher",
                    fmt(w["cpu_s_per_1k_lines"], ".3f"),
                    busy(w["life"]),
                    fmt(w["peak_rss_mb"], ".0f"),
                    "(no engine)",
                ),
                (
                    "worker",
                    fmt(k["cpu_s_per_1k_lines"], ".3f"),
                    busy(whole),
                    fmt(k["peak_rss_mb"], ".0f"),
                    fmt(k["rss_above_engine_baseline_mb"], ".0f"),
                ),
                ("broker (Tansu)", fmt(b["cpu_s_per_1k_lines"], ".3f"), "", "", ""),
                (
                    "engine baseline (python+chdb)",
                    "",
                    "",
                    fmt(base.get("peak_rss_mb"), ".0f"),
                    "",
                ),
            ]
        ),
        f"  RSS target: ≤ {TARGET_RSS_ABOVE_BASELINE_MB:.0f} MB per process above the engine "
        f"baseline — worker {verdict(t['worker_rss_ok'])}, "
        f"watcher (whole RSS) {verdict(t['watcher_rss_ok'])}",
        "  (cores busy = CPU s / wall s; watcher over its life, worker from its first line on)",
        "",
        "worker phases",
        table(
            [
                ("", "seconds", "lines/s", "cores busy (all/main thr)"),
                phase_row("while the watcher sends", k["phases"]["with_watcher"]),
                phase_row("alone on the backlog", k["phases"]["alone"]),
            ]
        ),
    ]
    chk = fig.get("check")
    if chk:
        parts += [
            "",
            "correctness (report `daily` from chdb vs Reference.load(corpus).daily())",
            f"  exact: {'yes' if chk['exact'] else 'no'}  "
            f"({chk['days']} days stored, {chk['reference_days']} in reference)",
        ]
        if chk["first_mismatch"]:
            parts.append(f"  first mismatch: {chk['first_mismatch']}")
        parts += [
            f"  total tokens stored {chk['stored_total_tokens']:,}  "
            f"reference {chk['reference_total_tokens']:,}",
            f"  total cost   stored {chk['stored_cost']}  reference {chk['reference_cost']}",
            f"  transcript rows {chk['transcript_rows']:,}, dead letters "
            f"{chk['dead_letter_rows']:,}; reference counted {chk['reference_counted']:,} "
            f"entries in {chk['reference_s']:.1f}s",
        ]
    ceil = fig.get("ceilings", {})
    parts += [
        "",
        "ceilings (same files, same run, each in a fresh process)",
        table(
            [
                ("", "lines/s", "wall s", "CPU s/1k lines", "peak RSS MB", ""),
                ("end to end (above)", fmt(fig["lines_per_s"]), fmt(fig["wall_s"], ".1f"), "", ""),
                ceiling_row("raw_consume (aiokafka, topic)", ceil.get("raw_consume"), lines),
                ceiling_row("chdb_direct (files → chdb)", ceil.get("chdb_direct"), lines),
                ("ccusage (from the issue)", f"≈ {CCUSAGE_LINES_PER_S:,}", "", "", "", ""),
            ]
        ),
    ]
    if fig.get("note"):
        parts += ["", f"note: {fig['note']}"]
    if fig.get("screenshot"):
        parts += ["", f"dashboard screenshot: {fig['screenshot']}"]
    if fig.get("error"):
        parts += ["", f"PIPELINE ERROR: {fig['error']}"]
    return "\n".join(parts)


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
