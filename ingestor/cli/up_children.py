"""``up``'s children, the worker and the watcher: their command lines, their processes restarted
with backoff (``local/restarts.py``; the worker's dead-letter limit, exit 65, is final), and
their stop. A date-filtered backfill (``Window``) gives the watcher a checkpoint of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestor.local.restarts import RestartPolicy
from ingestor.local.stack import release, spawn_ingestor, stop_processes
from ingestor.settings import Settings
from ingestor.worker.exits import FINAL

__all__ = [
    "BACKFILL_CHECKPOINT",
    "STOP_GRACE_S",
    "WATCH_STATS",
    "Child",
    "Window",
    "describe",
    "log_dir",
    "stop_children",
    "tend",
    "watch_args",
    "worker_args",
    "write_backfill_checkpoint",
]

WATCH_STATS = "watch-stats.json"
STOP_GRACE_S = 4.0  # SIGTERM to SIGKILL for the children; the whole stop stays under 5 s
BACKFILL_CHECKPOINT = "backfill-checkpoint.json"


@dataclass(frozen=True)
class Window:
    """A date-filtered backfill (``cli/backfill.py``): line times ``since_ms``..``until_ms``."""

    since_ms: int | None
    until_ms: int | None


def write_backfill_checkpoint(settings: Settings) -> None:
    """Write a filtered backfill's own checkpoint: the live one's files and generations at
    offset 0 (so its lines are stored under the generation the live watcher knows). The live
    checkpoint is not touched."""
    from ingestor.producer.checkpoint import Checkpoint, default_checkpoint_path

    live = Checkpoint.load(default_checkpoint_path(settings))
    path = settings.data_dir / BACKFILL_CHECKPOINT
    own = Checkpoint(path)
    for file in live:
        position = live.get(file)
        assert position is not None
        own.set(file, dataclasses.replace(position, offset=0))
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    own.save()


def worker_args(bootstrap: str, fresh: bool, extra: list[str] | None = None) -> list[str]:
    tansu = ["--tansu"] if fresh else []
    return ["worker", "--bootstrap", bootstrap, "--loglevel", "info", *tansu, *(extra or [])]


def watch_args(
    settings: Settings, bootstrap: str, dirs: list[Path], window: Window | None
) -> list[str]:
    """The watcher's command line; with a ``window``, its checkpoint is
    ``write_backfill_checkpoint``'s, to be written before the watcher is let go."""
    stats_file = settings.data_dir / WATCH_STATS
    args = ["watch", "--bootstrap", bootstrap, "--stats", str(stats_file)]
    return [*args, *_window_args(settings, window), *(str(d) for d in dirs)]


def _window_args(settings: Settings, window: Window | None) -> list[str]:
    """The watcher's arguments for a date-filtered backfill (none without one): its own
    checkpoint and the window."""
    if window is None:
        return []
    args = ["--checkpoint", str(settings.data_dir / BACKFILL_CHECKPOINT)]
    if window.since_ms is not None:
        args += ["--since-ms", str(window.since_ms)]
    if window.until_ms is not None:
        args += ["--until-ms", str(window.until_ms)]
    return args


def log_dir(settings: Settings) -> Path:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


class Child:
    """A worker or watcher process, restarted by ``Supervisor`` under its ``RestartPolicy``.

    Without a policy the first process is held (``--hold``: loaded, waiting on stdin) until
    ``go``; restarts are not.
    """

    def __init__(
        self, name: str, args: list[str], log: Path, policy: RestartPolicy | None = None
    ) -> None:
        self.name, self.args, self.log = name, args, log
        self.policy = policy or RestartPolicy(limit=0, base_s=1.0, max_s=1.0, clock=time.monotonic)
        self.proc = self._spawn(hold=policy is None)
        self.restart_at: float | None = None

    def _spawn(self, *, hold: bool = False) -> subprocess.Popen[bytes]:
        self.policy.started()
        self.started_at = time.time()
        return spawn_ingestor(self.args, self.log, hold=hold)

    def go(self, policy: RestartPolicy) -> None:
        """Let a held process go on; from now on it is restarted under ``policy``."""
        self.policy = policy
        self.policy.started()
        release(self.proc)  # one that died is restarted by tend

    def restart(self) -> None:
        self.proc, self.restart_at = self._spawn(), None


def tend(children: list[Child], say: Callable[[str], None]) -> int | None:
    """Restart children that died and are due; an exit status for up when it must give up."""
    now = time.monotonic()
    for child in children:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart()
            continue
        code = child.proc.poll()
        if code is None:
            continue
        what = f"{child.name} exited with {describe(code)}"
        if child.name == "worker" and code in FINAL:
            say(f"{what}: the input needs a look (see {child.log}); stopping")
            return code
        delay = child.policy.next_delay()
        if delay is None:
            say(
                f"{what}, {child.policy.failures} restarts in a row did not help; giving up "
                f"(see {child.log})"
            )
            return code or 1
        say(f"{what}; restart {child.policy.failures}/{child.policy.limit} in {delay:.0f}s")
        child.restart_at = now + delay
    return None


def describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL after ``STOP_GRACE_S``; returns once every child is gone (the
    embedded ClickHouse is then free for the keeper's ``_finish``)."""
    stop_processes(procs, STOP_GRACE_S)
