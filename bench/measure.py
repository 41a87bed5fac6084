"""Measuring a command and every process it starts: wall time, and each process's peak RSS and CPU.

``measure(cmd)`` runs ``cmd`` and samples ``/proc`` every ``SAMPLE_S`` for the whole process tree
under it (children, grandchildren: `ingestor up`'s Tansu, worker, watcher and the short-lived
children that open ClickHouse), keeping each process's ``VmHWM`` (the kernel's own high-water
mark, so a peak between samples is not missed while the process lives) and its CPU time as last
seen. A process that lives less than a sample may be missed; none of ours that matter does.
Linux only (``/proc``); elsewhere the tree holds the top process alone, without RSS.

Every ``THREADS_EVERY`` samples each process's threads are read too, to split its CPU between
the threads that keep the process's name (Python's, long-lived) and the others, which a native
library named (chdb's insert, query and merge pools, whose threads come and go): the second is
the process's total less the first.

``proc_usage(pid)`` is one such sample of one process, with its main thread's CPU apart, and
``run_measure`` runs one of ``bench._ceiling``'s measurements in a fresh process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.corpus import ROOT

__all__ = ["Proc", "Tree", "Usage", "interrupt", "measure", "proc_usage", "role_of", "run_measure"]

SAMPLE_S = 0.05
THREADS_EVERY = 10  # samples: the threads' CPU every 0.5 s (a worker has ~60 threads)
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Proc:
    """One process of the tree: what it is, its peak RSS (MB) and CPU seconds (all threads)."""

    pid: int
    role: str
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    own_threads_cpu_s: float = 0.0  # the threads named as the process: Python's


@dataclass
class Tree:
    """A measured command: its exit status, wall seconds, stdout, and every process seen."""

    returncode: int
    wall_s: float
    stdout: bytes
    procs: list[Proc] = field(default_factory=list)

    def peak_by_role(self) -> dict[str, float]:
        """The largest peak RSS (MB) of each role."""
        peaks: dict[str, float] = {}
        for proc in self.procs:
            peaks[proc.role] = max(peaks.get(proc.role, 0.0), proc.peak_rss_mb)
        return peaks


def role_of(cmdline: Sequence[str]) -> str:
    """A short name for a process from its command line (``ingestor up`` → ``up``)."""
    words = [os.path.basename(w) for w in cmdline]
    for marker in ("ingestor.cli.main", "ingestor"):
        if marker in words:
            at = words.index(marker)
            return words[at + 1] if at + 1 < len(words) else marker
    if any("multiprocessing" in w for w in cmdline):
        return "up's child (schema, broker restarts, finish)"
    return words[0] if words else "?"


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _stat_cpu(stat: str) -> float:
    """utime + stime in seconds, from the text of a ``/proc/.../stat`` file."""
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / _TICK


def _vm_hwm_mb(status: str) -> float:
    """``VmHWM`` in MB from the text of ``/proc/PID/status`` (0.0 for a zombie: it has none)."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _own_threads_cpu(pid: int, seen: dict[int, float]) -> float:
    """CPU seconds of ``pid``'s threads named as the process, ``seen`` holding each such
    thread's last figure: their sum, as last seen."""
    try:
        own = Path(f"/proc/{pid}/comm").read_text().strip()
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return sum(seen.values())
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] == own:
            seen[int(task)] = _stat_cpu(stat)
    return sum(seen.values())


def _sample(pid: int) -> tuple[float, float] | None:
    """(VmHWM MB, CPU s) of ``pid``, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return _vm_hwm_mb(status), _stat_cpu(stat)


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + sys, every thread) and peak RSS in MB of one process."""

    cpu_s: float
    peak_rss_mb: float
    main_thread_cpu_s: float | None = None  # the Python event-loop thread alone


def proc_usage(pid: int) -> Usage:
    """``/proc/PID/stat`` (utime + stime), the main thread's, and ``/proc/PID/status`` VmHWM.
    Raises ``OSError`` when the process is gone."""
    cpu = _stat_cpu(Path(f"/proc/{pid}/stat").read_text())
    main = _stat_cpu(Path(f"/proc/{pid}/task/{pid}/stat").read_text())
    return Usage(cpu, _vm_hwm_mb(Path(f"/proc/{pid}/status").read_text()), main)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def measure(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 3600.0,
    cwd: Path | None = None,
) -> Tree:
    """Run ``cmd`` to its end (killed after ``timeout_s``), sampling its process tree."""
    seen: dict[int, Proc] = {}
    threads: dict[int, dict[int, float]] = {}  # pid -> thread named as it -> CPU s
    done = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    linux = Path("/proc/self/stat").exists()

    def sampler() -> None:
        rounds = 0
        while not done.is_set():
            rounds += 1
            tree, stack = [], [proc.pid]
            children = _children_map()
            while stack:
                pid = stack.pop()
                tree.append(pid)
                stack.extend(children.get(pid, ()))
            for pid in tree:
                sample = _sample(pid)
                if sample is None:
                    continue
                cmdline = _cmdline(pid)
                if not cmdline:  # a zombie, or gone between two reads
                    continue
                entry = seen.get(pid)
                if entry is None:
                    entry = seen[pid] = Proc(pid, role_of(cmdline))
                else:  # read again: between fork and exec a child still shows its parent's
                    entry.role = role_of(cmdline)
                entry.peak_rss_mb = max(entry.peak_rss_mb, sample[0])
                entry.cpu_s = max(entry.cpu_s, sample[1])
                if rounds % THREADS_EVERY == 1:
                    own = _own_threads_cpu(pid, threads.setdefault(pid, {}))
                    entry.own_threads_cpu_s = max(entry.own_threads_cpu_s, own)
            done.wait(SAMPLE_S)

    thread = threading.Thread(target=sampler, daemon=True) if linux else None
    if thread is not None:
        thread.start()
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    if thread is not None:
        thread.join()
    procs = sorted(seen.values(), key=lambda p: p.pid)
    if not procs:
        procs = [Proc(proc.pid, role_of(list(cmd)))]
    return Tree(proc.returncode, wall, out, procs)


def interrupt(proc: subprocess.Popen[bytes], grace_s: float = 60.0) -> None:
    """Stop ``proc`` as Ctrl-C would; kill it when it is not gone after ``grace_s``."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
