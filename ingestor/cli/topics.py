"""``ingestor topics create``: create the topics declared in ``topics/`` (idempotent)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ingestor.cli.common import resolve_bootstrap
from ingestor.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "topics",
        help="Kafka topics",
        description="Create the topics of topics/topics.toml (prefix INGESTOR_TOPIC_PREFIX, "
        "default `ingestor.`) on a configured broker; `ingestor up` does it for you.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create missing topics on the configured broker")
    create.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default: INGESTOR_KAFKA_BOOTSTRAP)"
    )
    create.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ingestor.kafka.topics import create_topics

    settings = load_settings()
    bootstrap = resolve_bootstrap(args, settings)
    created = asyncio.run(create_topics(settings, bootstrap))
    print(f"{bootstrap}: created {len(created)} topic(s)" + "".join(f"\n  {t}" for t in created))
    return 0
