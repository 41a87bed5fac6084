"""The embedded stack's processes, started, awaited and stopped one way by all who run them:
``ingestor up`` (``cli/up.py``; ``cli/up_supervise.py`` adds restarts and the broker's
recycling on top), the integration harness (``tests/integration/pipeline.py``) and the benchmarks
(``bench/``).

The broker is ``TansuBroker`` (``local/tansu.py``: a free port, the readiness probe, restart on
a new port); this module is what goes around it.

Contract:

* ``spawn_ingestor(args, log)`` runs ``python -m ingestor.cli.main ARGS`` with its output
  appended to ``log``. The child dies with its parent (Linux, ``PR_SET_PDEATHSIG``); the kernel
  ties that to the *thread* that forked it, so spawn from a thread that outlives the child.
  ``hold=True`` adds ``--hold``: the child loads its modules and waits until ``release``.
* ``stop_processes(procs, grace_s)`` signals every live one (SIGTERM), gives them all one
  ``grace_s``, SIGKILLs what is left and returns once every one is reaped. It never raises for a
  process that already exited.
* ``worker_stats`` is the worker's ``GET /stats/``, ``{}`` while it does not answer; it never
  raises. ``wait_ready`` polls it until the worker says it consumes (or any test of ours holds).
* ``prepare`` applies the ClickHouse schema and creates the topics: the minimum a worker needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from ingestor.settings import Settings

__all__ = [
    "Stoppable",
    "die_with_parent_hook",
    "free_port",
    "prepare",
    "release",
    "spawn_ingestor",
    "stats_url",
    "stop_processes",
    "wait_ready",
    "worker_stats",
]

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (someone may take it before the caller binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- children


def spawn_ingestor(
    args: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    hold: bool = False,
) -> subprocess.Popen[bytes]:
    """``python -m ingestor.cli.main ARGS`` (``env`` None: ours), output appended to ``log``."""
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ingestor.cli.main", *args, *(["--hold"] if hold else [])],
            preexec_fn=die_with_parent_hook(),
            env=env,
            cwd=cwd,  # Faust writes its data dir into the working directory
            stdin=subprocess.PIPE if hold else None,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def release(proc: subprocess.Popen[bytes]) -> None:
    """Let a child spawned with ``hold`` go on. A child that died meanwhile is left as it is."""
    stdin = proc.stdin
    if stdin is not None:
        with contextlib.suppress(OSError):
            stdin.write(b"go\n")
            stdin.close()


class Stoppable(Protocol):
    """What ``stop_processes`` needs of a process: ``subprocess.Popen`` has it."""

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def stop_processes(
    procs: Sequence[Stoppable], grace_s: float, *, sig: int = signal.SIGTERM
) -> None:
    """``sig`` to each live process, then SIGKILL after ``grace_s``; returns once all are gone."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()  # reaped: an embedded ClickHouse it held is free


def die_with_parent_hook() -> Callable[[], None]:
    """A ``preexec_fn`` that makes a child process die with the calling process (Linux)."""
    prctl, parent = _prctl(), os.getpid()
    return lambda: _die_with_parent(prctl, parent)


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up in the parent: the child between fork and exec must stay minimal."""
    try:
        return cast(Callable[..., int], ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError):  # not Linux
        return None


def _die_with_parent(prctl: Callable[..., int] | None, parent: int) -> None:
    """Runs in the child before exec: ask for SIGKILL when the parent goes (Linux only)."""
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


# ---------------------------------------------------------------------- the worker's views


def stats_url(host: str, port: int | str) -> str:
    return f"http://{host}:{port}/stats/"


def worker_stats(host: str, port: int | str, *, timeout_s: float = 1.0) -> dict[str, Any]:
    """The worker's ``/stats/``; ``{}`` when it does not answer (starting, busy, gone)."""
    try:
        with urllib.request.urlopen(stats_url(host, port), timeout=timeout_s) as reply:
            body = json.loads(reply.read())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _says_ready(stats: dict[str, Any]) -> bool:
    return bool(stats.get("ready"))


def wait_ready(
    host: str,
    port: int | str,
    proc: Stoppable,
    *,
    timeout_s: float,
    poll_s: float,
    stop: threading.Event | None = None,
    ready: Callable[[dict[str, Any]], bool] = _says_ready,
) -> bool:
    """Until ``ready(stats)``: by default, the worker has partitions and is not rebalancing.
    False when ``proc`` exited, ``stop`` was set or ``timeout_s`` passed first."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None and not stop.is_set():
        if ready(worker_stats(host, port)):
            return True
        stop.wait(poll_s)
    return False


# ---------------------------------------------------------------------- storage and topics


def prepare(settings: Settings, bootstrap: str) -> None:
    """Apply the schema, closing ClickHouse again (chdb admits one process per directory: the
    worker's, next), and create the topics."""
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.clickhouse.migrations import apply_schema
    from ingestor.kafka.topics import create_topics

    with open_clickhouse(settings.clickhouse) as ch:
        apply_schema(ch)
    asyncio.run(create_topics(settings, bootstrap))
