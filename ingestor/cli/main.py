"""``ingestor``: one sub-command a module in this package.

Every user error is one line on stderr naming the problem and the fix, with a non-zero exit;
``-v`` (before or after the sub-command) adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from ingestor.errors import IngestorError

__all__ = ["main"]

COMMANDS = (
    "up",
    "worker",
    "watch",
    "topics",
    "schema",
    "report",
    "corpus",
    "replay",
    "backfill",
    "verify",
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ingestor")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (importlib.metadata is
    a tenth of a report's start)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"ingestor {_version()}")
        parser.exit()


def command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when it names one of ``COMMANDS``: its first word that is not
    a flag (the only flags before a command, ``-v`` and ``--version``, take no value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` that command's alone: each command's module is
    loaded to register it, and a child of ``up`` (or any run of one command) needs one."""
    from importlib import import_module

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output; tracebacks on errors"
    )
    # The same flag after the command, whose default must not reset one given before it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="idem")
    parser = argparse.ArgumentParser(
        prog="ingestor",
        description="LLM token usage and observability events: Kafka → Faust → ClickHouse. "
        "Start with `ingestor up` (Ctrl-C stops, running it again resumes), then "
        "`ingestor report daily`.",
        epilog="Data (embedded ClickHouse, checkpoint, logs) goes to the data dir: "
        "INGESTOR_DATA_DIR, default the platform's user data dir (~/.local/share/ingestor on "
        "Linux). Settings: INGESTOR_* variables or .ingestor.env (see README).",
        parents=[common],
    )
    parser.add_argument("--version", action=_Version, help="show program's version number and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    original = sub.add_parser

    def add_parser(name: str, **kwargs: object) -> argparse.ArgumentParser:
        # Every command takes -v too, and reports its own usage on a bad flag.
        p = original(name, parents=[after], **kwargs)  # type: ignore[arg-type]
        p.set_defaults(subparser=p)
        return p

    sub.add_parser = add_parser  # type: ignore[method-assign]
    for name in COMMANDS if only is None else (only,):
        import_module(f"ingestor.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(command_of(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        where: argparse.ArgumentParser = getattr(args, "subparser", parser)
        where.error(f"unrecognized arguments: {' '.join(extra)}")
    from ingestor.obs.logs import setup_logging

    # Every process (and `up`'s children, which run this same main) sets up logging here.
    setup_logging(logging.WARNING - 10 * min(args.verbose, 2))
    try:
        return int(args.run(args) or 0)
    except (IngestorError, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"ingestor: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        where = exc.filename
        return f"permission denied: {where} (check its owner and mode, or set INGESTOR_DATA_DIR)"
    if isinstance(exc, OSError) and not isinstance(exc, IngestorError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
