"""When to look at the files again: file-system events, with polling as the fallback.

The watcher's pass (``watch.py``) finds what changed by itself (sizes, inodes, positions), so an
event only has to say *when* to run one; what it names is not trusted. ``Changes`` follows the
watched directories with the maintained ``watchfiles`` package (inotify on Linux, FSEvents,
ReadDirectoryChangesW) in a background task and sets a flag on any change to a ``*.jsonl`` file
or a directory. ``wait`` returns when the flag is set, when ``stop`` is set, or after the
rescan interval at the latest: events can be missed (a directory that does not exist yet cannot
be watched, inotify's watch limit, network file systems), so a slow rescan stays as a net.

When events cannot be had at all (``watchfiles`` fails to start or dies) ``Changes`` logs it once
and falls back to polling every ``poll_s`` — the old behaviour.

Contract: ``wait`` never raises for the watching's sake; ``close`` is idempotent. The flag is
cleared when ``wait`` returns, before the pass it triggers reads anything, so a change during
that pass triggers the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEBOUNCE_MS", "Changes", "relevant"]

log = logging.getLogger(__name__)

DEBOUNCE_MS = 20  # changes within this are one wake-up (watchfiles' default, 1.6 s, is latency)
_STEP_MS = 10  # how often watchfiles checks for the end of a debounce window


def relevant(change: Any, path: str) -> bool:
    """Events that can change what a pass finds: transcript files, and directories (a new
    project directory holds files the pass must discover). Pure."""
    return path.endswith(".jsonl") or not os.path.splitext(path)[1]


class Changes:
    """Wakes the watcher on file changes under ``dirs``; ``rescan_s`` / ``poll_s`` bound the wait
    with events / without them. ``use_events=False`` polls from the start."""

    def __init__(
        self,
        dirs: Sequence[Path | str],
        *,
        rescan_s: float,
        poll_s: float,
        use_events: bool = True,
    ) -> None:
        self._dirs = [Path(d) for d in dirs]
        self._rescan_s = rescan_s
        self._poll_s = poll_s
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._events = False
        self._try_events = use_events  # until events failed once, or were started
        self._start()

    @property
    def events(self) -> bool:
        """Whether changes arrive as events now (else polling)."""
        return self._events

    def _start(self) -> None:
        if not self._try_events:
            return
        existing = [d for d in self._dirs if d.is_dir()]
        if not existing:
            return  # nothing to watch yet: poll, and try again on the next wait
        self._try_events = False
        # Files may have appeared before the watch began: one pass right away finds them.
        self._changed.set()
        try:
            import watchfiles
        except ImportError:  # pragma: no cover - a declared dependency
            log.warning("watchfiles is not installed: polling every %.1fs", self._poll_s)
            return
        self._events = True
        self._task = asyncio.create_task(self._follow(watchfiles, existing))

    async def _follow(self, watchfiles: Any, dirs: list[Path]) -> None:
        try:
            async for _ in watchfiles.awatch(
                *dirs,
                watch_filter=relevant,
                debounce=DEBOUNCE_MS,
                step=_STEP_MS,
                stop_event=self._closing,
                ignore_permission_denied=True,
            ):
                self._changed.set()
        except Exception as exc:  # noqa: BLE001 - any failure: fall back, never stop the watcher
            log.warning("file events unavailable (%s): polling every %.1fs", exc, self._poll_s)
        finally:
            self._events = False
            self._changed.set()  # one pass now: what happened while it failed is found

    async def wait(self, stop: asyncio.Event) -> None:
        """Until a change, ``stop``, or the rescan (events) / poll (no events) interval."""
        self._start()
        timeout = self._rescan_s if self._events else self._poll_s
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._changed, stop)]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._changed.clear()

    async def close(self) -> None:
        self._closing.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
