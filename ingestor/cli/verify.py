"""``ingestor verify [DIR...]``: recompute the totals from the files and compare with ClickHouse;
``ingestor verify --topics [T...]``: the same for what the topics hold, record by record.

Exit 0 when ClickHouse holds exactly what the files say (per file: lines stored, dead letters,
usage lines and tokens; per session: counted entries, tokens, cost), 1 on a mismatch (each
difference named), 2 on a usage error. Run it on files that are not being written: a line
appended since the last ingest is a (true) difference. While ``ingestor up`` holds the embedded
ClickHouse, its worker answers ClickHouse's side (``GET /verify/``).

SDK events and ledger entries have no files: ``--topics`` reads the topics again (a consumer of
its own, nothing committed), builds each record's rows as the worker does, and checks that each
is stored once with its values (``report/verify_topics.py``); then that the events rollups equal
``events``. Through the running worker when there is one (``POST /verify/topic``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestor.errors import ConfigError, StorageError
from ingestor.settings import Settings, default_watch_dirs, load_settings

if TYPE_CHECKING:
    from ingestor.clickhouse.engine import ClickHouse
    from ingestor.corpus.reference import FileTally
    from ingestor.report.verify import SessionTally
    from ingestor.report.verify_topics import TopicCheck
    from ingestor.wire import Kind

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="compare ClickHouse with the transcript files (exit 1 on a mismatch)",
        description="Recompute what the transcript files hold with the product's own rules "
        "(ccusage's acceptance and dedup) and compare it with ClickHouse, per file and per "
        "session; print the accuracy ratio and the undercount, name every difference, and exit "
        "1 on a mismatch. Give the directories `ingestor up` watched. The embedded ClickHouse "
        "admits one process: while `ingestor up` runs, its worker answers ClickHouse's side.",
    )
    p.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        help="the watched directories (default: as `ingestor up`: ~/.claude/projects, or each "
        "projects/ under $CLAUDE_CONFIG_DIR)",
    )
    p.add_argument("--show", type=int, default=20, help="differences listed (default 20)")
    p.add_argument(
        "--topics",
        nargs="*",
        metavar="TOPIC",
        help="check the records the topics hold instead of files (events, ledger, transcripts; "
        "none named: all three), then that the events rollups equal the events",
    )
    p.add_argument(
        "--from",
        dest="since",
        default="earliest",
        metavar="earliest|TIME",
        help="with --topics: records sent at or after TIME (default: earliest)",
    )
    p.add_argument("--bootstrap", help="with --topics: Kafka bootstrap servers")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.corpus.reference import Reference
    from ingestor.report.verify import compare, stored_files, stored_sessions

    settings = load_settings()
    if args.topics is not None:
        if args.dirs:
            raise ConfigError("give directories or --topics, not both")
        return _run_topics(args, settings)
    dirs = [d.expanduser().resolve() for d in (args.dirs or default_watch_dirs())]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise ConfigError(f"not a directory: {', '.join(missing)}")
    target = settings.clickhouse
    if target.kind == "chdb" and target.path is not None and not target.path.is_dir():
        raise ConfigError(f"no data yet in {settings.data_dir}: run `ingestor up` first")
    reference = Reference.load_dirs(dirs)
    try:
        ch = open_clickhouse(target)
    except StorageError as exc:
        if target.kind != "chdb":
            raise
        # Most likely the running worker holds the embedded engine: ask it instead.
        try:
            files, sessions = _from_worker(settings, dirs)
            print(f"ClickHouse's side from the running worker ({settings.web_port})", flush=True)
        except OSError:
            raise ConfigError(
                f"cannot open the embedded ClickHouse in {target.path}, and no worker answers on "
                f"{settings.web_host}:{settings.web_port}"
            ) from exc
    else:
        with ch:
            files = stored_files(ch, [str(d) for d in dirs])
            sessions = stored_sessions(ch, files)
    verdict = compare(reference, files, sessions)
    print("\n".join(verdict.lines_out(args.show)), flush=True)
    return 0 if verdict.ok else 1


def _from_worker(
    settings: Settings, dirs: list[Path]
) -> tuple[dict[str, FileTally], dict[str, SessionTally]]:
    """ClickHouse's side, asked of the running worker (``GET /verify/``). Raises ``OSError``."""
    from ingestor.corpus.reference import FileTally
    from ingestor.report.verify import SessionTally

    query = urllib.parse.urlencode([("dir", str(d)) for d in dirs])
    url = f"http://{settings.web_host}:{settings.web_port}/verify/?{query}"
    try:
        body = _get_json(url)
    except ValueError as exc:
        raise OSError(f"the worker's answer is not JSON: {exc}") from exc
    files = {f: FileTally(*map(int, t)) for f, t in body["files"].items()}
    sessions = {
        s: SessionTally(int(t[0]), int(t[1]), Decimal(t[2])) for s, t in body["sessions"].items()
    }
    return files, sessions


def _run_topics(args: argparse.Namespace, settings: Settings) -> int:
    from ingestor.cli.replay import broker_address, input_topics, parse_time, worker_url

    since_ms = None if args.since.strip().lower() == "earliest" else parse_time(args.since)
    kinds = input_topics(settings, args.topics)
    bootstrap = broker_address(settings, args.bootstrap)
    worker = worker_url(settings)
    where = f"the running worker ({worker})" if worker else str(settings.clickhouse)
    print(f"checking {', '.join(kinds)} from {bootstrap} against ClickHouse through {where}")
    check, rollups = asyncio.run(_check_topics(settings, bootstrap, kinds, since_ms, worker))
    print("\n".join(check.lines_out(args.show)))
    if rollups:
        print("events rollups that are not the aggregation of events:")
        print("\n".join(f"  {line}" for line in rollups[: args.show]))
    else:
        print("events rollups: equal to the events they aggregate")
    ok = check.ok and not rollups
    print("OK: ClickHouse holds every record once" if ok else "MISMATCH")
    return 0 if ok else 1


async def _check_topics(
    settings: Settings,
    bootstrap: str,
    kinds: dict[str, Kind],
    since_ms: int | None,
    worker: str | None,
) -> tuple[TopicCheck, list[str]]:
    from aiokafka import AIOKafkaConsumer

    from ingestor.cli.replay import CHUNK_MESSAGES, post_json
    from ingestor.kafka.config import client_kwargs
    from ingestor.kafka.ranges import Range, plan, read_range
    from ingestor.report.verify_topics import TopicCheck, check_rows, rollup_differences
    from ingestor.worker.replay import replay_rows

    consumer = AIOKafkaConsumer(**client_kwargs(settings, bootstrap), enable_auto_commit=False)
    await consumer.start()
    ch = None if worker else _open_stored(settings)
    total = TopicCheck()
    try:
        for whole in await plan(consumer, list(kinds), since_ms=since_ms):
            start = whole.start
            while start < whole.end:
                part = Range(whole.topic, whole.partition, start, whole.end)
                if ch is None:
                    end = min(part.end, start + CHUNK_MESSAGES)
                    body = {"topic": part.topic, "partition": part.partition, "start": start}
                    answer = await asyncio.to_thread(
                        post_json, f"{worker}/verify/topic", {**body, "end": end}, "verify"
                    )
                    check, following = TopicCheck.from_json(answer["check"]), int(answer["next"])
                else:
                    messages, following = await read_range(
                        consumer, part, max_bytes=settings.batch_max_bytes,
                        max_messages=CHUNK_MESSAGES,
                    )  # fmt: skip
                    replayed = replay_rows(
                        messages, kinds, bad_line_max_bytes=settings.bad_line_max_bytes
                    )
                    check = await asyncio.to_thread(check_rows, ch, replayed.rows)
                    check.messages = replayed.messages
                if following <= start:
                    raise StorageError(f"no progress at {part.topic}[{part.partition}]")
                total.merge(check)
                start = following
        if ch is None:
            rollups = await asyncio.to_thread(_get_json, f"{worker}/verify/rollups")
            return total, list(rollups["differences"])
        return total, await asyncio.to_thread(rollup_differences, ch)
    finally:
        await consumer.stop()
        if ch is not None:
            ch.close()


def _open_stored(settings: Settings) -> ClickHouse:
    from ingestor.clickhouse.engine import open_clickhouse

    target = settings.clickhouse
    if target.kind == "chdb" and target.path is not None and not target.path.is_dir():
        raise ConfigError(f"no data yet in {settings.data_dir}: run `ingestor up` first")
    return open_clickhouse(target)


def _get_json(url: str) -> Any:
    """The running worker's JSON answer to a GET (raises ``OSError``, ``ValueError``)."""
    with urllib.request.urlopen(url, timeout=600) as reply:
        return json.loads(reply.read())
