"""``ingestor worker``: the Faust stream worker (validate, dedup, aggregate, store)."""

from __future__ import annotations

import argparse
from typing import Any

from ingestor.cli.common import resolve_bootstrap, tune_gc
from ingestor.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("worker", help="run the Faust stream worker")
    p.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default: INGESTOR_KAFKA_BOOTSTRAP)"
    )
    p.add_argument(
        "--tansu",
        action="store_true",
        help="the broker is the embedded Tansu: apply its workarounds (set by `ingestor up`)",
    )
    p.add_argument("--loglevel", default="warning")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    bootstrap = resolve_bootstrap(args, settings)
    if args.tansu:
        from ingestor.local.compat import patch_faust_for_tansu

        patch_faust_for_tansu()
    from ingestor.sink.engine import open_clickhouse
    from ingestor.worker.app import build_app, store_held
    from ingestor.worker.stop import BoundedWorker

    tune_gc()
    ch = open_clickhouse(settings.clickhouse)
    try:
        app = build_app(settings, bootstrap, ch)
        worker = BoundedWorker(
            app, store=lambda: store_held(app), loglevel=args.loglevel, quiet=True
        )
        worker.execute_from_commandline()
    finally:
        ch.close()
    return 0
