"""``ingestor``: one sub-command a module in this package."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ingestor.errors import IngestorError

__all__ = ["main"]

COMMANDS = ("up", "worker", "watch", "topics", "schema", "report", "corpus")


def build_parser() -> argparse.ArgumentParser:
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="ingestor",
        description="LLM token usage and observability events: Kafka → Faust → ClickHouse.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        import_module(f"ingestor.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except IngestorError as exc:
        print(f"ingestor: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
