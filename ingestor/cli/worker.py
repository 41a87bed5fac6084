"""``ingestor worker``: the Faust stream worker (validate, dedup, aggregate, store)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, cast

from ingestor.cli.common import exit_at_once, resolve_bootstrap, tune_gc
from ingestor.settings import load_settings

LOGLEVELS = ("debug", "info", "warning", "error", "critical")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "worker",
        help="run the Faust stream worker alone (`ingestor up` runs it for you)",
        description="Consume the input topics, validate, deduplicate and aggregate, and store "
        "micro-batches in ClickHouse (INGESTOR_CLICKHOUSE_URL; default the embedded chdb under "
        "the data dir, INGESTOR_DATA_DIR). Serves /sessions/, /stats/ and /report/{kind}/ on "
        "INGESTOR_WEB_HOST:INGESTOR_WEB_PORT (default 127.0.0.1:6066). Stops on Ctrl-C/SIGTERM.",
    )
    p.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default: INGESTOR_KAFKA_BOOTSTRAP)"
    )
    p.add_argument(
        "--tansu",
        action="store_true",
        help="the broker is the embedded Tansu: apply its workarounds (set by `ingestor up`)",
    )
    # Set by a date-filtered `ingestor backfill`: its lines vouch for no file position.
    p.add_argument("--no-positions", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--hold",
        action="store_true",
        help="load everything, then wait for a line on stdin before opening ClickHouse (set by "
        "`ingestor up`, which starts the worker while it prepares the schema; EOF exits)",
    )
    p.add_argument(
        "--loglevel",
        default="warning",
        choices=LOGLEVELS,
        help="Faust's log level, on stderr (default: warning; `ingestor up` uses info and writes "
        "it to logs/worker.log under the data dir)",
    )
    p.set_defaults(run=run)


_LEVELS = {name: getattr(logging, name.upper()) for name in LOGLEVELS}


def run(args: argparse.Namespace) -> int:
    from ingestor.clickhouse.allocators import refuse_pandas
    from ingestor.worker.trim import tune_malloc

    tune_malloc()  # before the threads that allocate start
    refuse_pandas()
    settings = load_settings()
    bootstrap = resolve_bootstrap(args, settings)
    if args.tansu:
        from ingestor.local.compat import patch_faust_for_tansu, tansu_session_timeout

        patch_faust_for_tansu()
        timeout_s = tansu_session_timeout(settings.broker_session_timeout_s)
        settings = settings.model_copy(update={"broker_session_timeout_s": timeout_s})
    from ingestor.clickhouse.engine import open_clickhouse
    from ingestor.worker.app import build_app
    from ingestor.worker.flusher import store_held
    from ingestor.worker.stop import BoundedWorker, start_tables_at_once

    tune_gc()
    start_tables_at_once()
    if args.hold:
        # The imports above (Faust, aiokafka, pyarrow) took the time `up` spends on the schema.
        import ingestor.clickhouse.chdb_engine  # noqa: F401 - chdb's load, too

        # Faust loads most of itself on its first App (agents, tables, its web server's
        # aiohttp: ~0.2 s): one built now and dropped. Building uses no ClickHouse.
        build_app(settings, bootstrap, cast(Any, None))
        if not sys.stdin.readline():
            return 0  # `up` went away before the schema was ready
    ch = open_clickhouse(settings.clickhouse)
    try:
        from ingestor.clickhouse.usage_rollup import ensure_usage_rollup
        from ingestor.clickhouse.winners import ensure_winners

        ensure_winners(ch)  # data stored before the winners were kept at write time
        ensure_usage_rollup(ch)  # ... before they were summed, or a batch a crash left unsummed
        app = build_app(settings, bootstrap, ch, positions=not args.no_positions)
        # Logging was set up by cli/main.py (format, run id, redaction): mode must not replace
        # it; Faust's level is ours to set.
        logging.getLogger().setLevel(min(logging.getLogger().level, _LEVELS[args.loglevel]))
        worker = BoundedWorker(
            app,
            store=lambda: store_held(app),
            loglevel=args.loglevel,
            quiet=True,
            override_logging=False,
        )
        if not sys.stdout.isatty():
            # Faust's spinner writes a cursor escape at start-up even into a log file, where it
            # would prefix a log line (and break JSON lines).
            worker.spinner = None
        status = 0
        try:
            worker.execute_from_commandline()  # raises SystemExit
        except SystemExit as stopped:
            status = _status(stopped.code)
    finally:
        ch.close()  # waits for an insert in flight: none is left after it
    return exit_at_once(status)


def _status(code: object) -> int:
    """A ``SystemExit`` code as the process's exit status, as Python would make it."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1
