"""``ingestor backfill DIR... [--since --until]``: history that is only on disk, into ClickHouse.

The embedded broker keeps topics in memory only, so ``ingestor replay`` reaches back no further
than the running ``ingestor up``; older history is in the transcript files, and this is its way
in. It is ``ingestor up --once`` over ``DIR...`` (the same watcher, worker, exactly-once inserts
and progress: files, lines, lines/s, ETA, records stored), so it is idempotent: lines ClickHouse
holds replace themselves, and it cannot run while ``ingestor up`` holds the data dir (whose
watcher reads the whole of its files anyway).

``--since`` / ``--until`` keep the lines whose own timestamp is in the window, applied by the
watcher to each chunk as it is read, before anything is sent (``producer/window.py``). A
filtered backfill leaves every resume point as it was: the watcher reads with a checkpoint of
its own (the live one's files and generations, from offset 0) and the worker writes no
``file_positions``, so no file is marked read past lines the window left out; the next
``ingestor up`` reads on from where it had got to, and the lines the backfill stored replace
themselves. Reports apply ccusage's dedup over what ClickHouse holds, so a window that cuts
between two copies of a message counts the copy it holds until the rest is stored.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingestor.errors import ConfigError

__all__ = ["parse_bound", "register", "run"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "backfill",
        help="ingest transcript history from disk once (optionally a date window); idempotent",
        description="Ingest what the transcript files under DIR... hold, once, as `ingestor up "
        "--once` does, showing files, lines, lines/s and ETA. Lines already stored replace "
        "themselves, so a second backfill changes nothing. --since/--until keep the lines whose "
        "timestamp is inside the window (applied before lines are sent) and leave the watcher's "
        "resume points alone. Not while `ingestor up` runs on the same data dir.",
    )
    p.add_argument("dirs", nargs="+", type=Path, help="directories of transcripts (projects/)")
    p.add_argument(
        "-s", "--since", help="first day YYYYMMDD / YYYY-MM-DD (UTC), or an ISO time; inclusive"
    )
    p.add_argument(
        "-u", "--until", help="last day YYYYMMDD / YYYY-MM-DD (UTC), or an ISO time; inclusive"
    )
    p.set_defaults(run=run)


def parse_bound(text: str, *, end: bool) -> int:
    """Milliseconds since the epoch: a day's first (or, ``end``, last) millisecond in UTC, or an
    ISO 8601 time (naive: UTC)."""
    value = text.strip()
    day = value.replace("-", "")
    if len(day) == 8 and day.isdigit():
        try:
            start = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            raise ConfigError(f"not a date: {text!r}") from None
        when = start + timedelta(days=1) - timedelta(milliseconds=1) if end else start
        return int(when.timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not a date or time: {text!r} (YYYYMMDD or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def run(args: argparse.Namespace) -> int:
    from ingestor.cli.up import run_stack
    from ingestor.cli.up_children import Window

    dirs = [d.expanduser().resolve() for d in args.dirs]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise ConfigError(f"not a directory: {', '.join(missing)}")
    since = parse_bound(args.since, end=False) if args.since else None
    until = parse_bound(args.until, end=True) if args.until else None
    if since is not None and until is not None and until < since:
        raise ConfigError("--until is before --since")
    window = Window(since, until) if since is not None or until is not None else None
    started = time.monotonic()
    status, record = run_stack(dirs, once=True, mode="backfill", window=window)
    took = max(time.monotonic() - started, 1e-9)
    p = record.progress
    print(
        f"backfill: {p.get('files', 0):,} files, {p.get('lines_read', 0):,} lines sent, "
        f"{p.get('records_stored', 0):,} records stored in {took:.1f}s "
        f"({p.get('records_stored', 0) / took:,.0f} records/s)",
        flush=True,
    )
    return status
