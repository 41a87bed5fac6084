"""``ingestor watch [DIR...]``: tail Claude Code transcripts and send their lines to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ingestor.cli.common import resolve_bootstrap, tune_gc
from ingestor.errors import BrokerError
from ingestor.settings import Settings, load_settings

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "watch",
        help="tail transcripts into Kafka alone (`ingestor up` runs it for you)",
        description="Follow every *.jsonl under the directories, strip conversation text and send "
        "the lines to Kafka. Its position in each file is kept in the data dir "
        "(INGESTOR_DATA_DIR), so a restart resumes where it stopped.",
    )
    p.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        help="directories to watch (default: ~/.claude/projects, or each projects/ under "
        "$CLAUDE_CONFIG_DIR)",
    )
    p.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default: INGESTOR_KAFKA_BOOTSTRAP)"
    )
    p.add_argument("--once", action="store_true", help="send what exists now, then exit")
    p.add_argument("--stats", type=Path, help="write progress counters to this JSON file")
    # Set by `ingestor backfill` (cli/backfill.py), which also keeps the positions apart.
    p.add_argument("--since-ms", type=int, help=argparse.SUPPRESS)
    p.add_argument("--until-ms", type=int, help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    p.add_argument(
        "--hold",
        action="store_true",
        help="load everything, then wait for a line on stdin before reading the checkpoint and "
        "the files (set by `ingestor up`, which starts the watcher while the worker joins its "
        "group; EOF exits)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    bootstrap = resolve_bootstrap(args, settings)
    dirs = [d.expanduser().resolve() for d in args.dirs] or None

    if args.hold:
        # What _watch imports: loaded while the worker starts, not after it is ready.
        import ingestor.obs.metrics  # noqa: F401
        import ingestor.producer.sender  # noqa: F401
        import ingestor.producer.watch  # noqa: F401

        if not sys.stdin.readline():
            return 0  # `up` went away before the worker was ready
    tune_gc()
    keep = None
    if args.since_ms is not None or args.until_ms is not None:
        from ingestor.producer.window import Window

        keep = Window(args.since_ms, args.until_ms)
    asyncio.run(
        _watch(
            settings,
            bootstrap,
            dirs,
            stats=args.stats,
            once=args.once,
            keep=keep,
            checkpoint_path=args.checkpoint,
        )
    )
    return 0


async def _watch(
    settings: Settings,
    bootstrap: str,
    dirs: list[Path] | None,
    *,
    stats: Path | None,
    once: bool,
    keep: Any = None,
    checkpoint_path: Path | None = None,
) -> None:
    from ingestor.obs.metrics import (
        WatcherCounts,
        watcher_exposition,
        watcher_textfile,
        write_textfile,
    )
    from ingestor.producer.changes import Changes
    from ingestor.producer.checkpoint import Checkpoint, default_checkpoint_path
    from ingestor.producer.sender import KafkaSender
    from ingestor.producer.watch import Watcher

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    checkpoint = Checkpoint.load(checkpoint_path or default_checkpoint_path(settings))
    async with KafkaSender.from_settings(settings, bootstrap) as sender:
        watcher = Watcher(settings, dirs, sender, checkpoint, keep=keep)
        idle, idle_at = False, -1
        # Prometheus: the worker's /metrics serves this file (see obs/metrics.py).
        textfile = watcher_textfile(settings.data_dir)
        backlog = (0, 0)  # measured once a report: it stats every file followed
        counts = WatcherCounts(lambda: watcher.stats, lambda: backlog)

        def report() -> None:
            nonlocal backlog
            backlog = done, total = watcher.backlog()
            try:
                write_textfile(textfile, watcher_exposition(counts))
            except OSError as exc:  # metrics must never stop the watcher
                log.warning("could not write %s: %s", textfile, exc)
            if stats is not None:
                # Idle: the last pass found nothing, and nothing was read since.
                still = idle and watcher.stats.lines_read == idle_at
                body = {**asdict(watcher.stats), "idle": still, "pid": os.getpid()}
                _write_stats(stats, {**body, "bytes_done": done, "bytes_total": total})

        async def report_often() -> None:
            # A first pass over a large tree is long: the display moves while it runs.
            while True:
                await asyncio.sleep(1.0)
                report()

        reporter = asyncio.create_task(report_often())
        changes = Changes(
            watcher.dirs,
            rescan_s=settings.watch_rescan_s,
            poll_s=settings.watch_poll_interval_s,
            use_events=settings.watch_events and not once,
        )
        try:
            while not stop.is_set():
                try:
                    sent = await watcher.run_once()
                except BrokerError as exc:
                    log.warning("%s; retrying from the acknowledged positions", exc)
                    sent = -1
                idle, idle_at = sent == 0, watcher.stats.lines_read
                report()
                if once and idle:
                    return
                await changes.wait(stop)
        finally:
            reporter.cancel()
            await changes.close()
            with contextlib.suppress(OSError):  # the final counts, which `up` reads when it
                report()  # replaces the broker


def _write_stats(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)
