"""``ingestor corpus ROOT``: write a realistic synthetic Claude Code transcript tree."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "corpus",
        help="generate a synthetic transcript tree",
        description="Write ROOT/projects/<project>/<session>.jsonl like Claude Code does, for "
        "tests and benchmarks; the same options always write the same bytes. Writes only under "
        "ROOT (nothing in the data dir); ingest it with `ingestor up ROOT/projects`.",
    )
    p.add_argument("root", type=Path, help="writes ROOT/projects/<project>/<session>.jsonl")
    p.add_argument("--lines", type=_count, default=10_000, help="lines to write (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--odd-rate", type=_rate, default=0.002,
        help="share of odd or malformed lines after a timestamped one (default 0.002)",
    )  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ingestor.corpus.generate import generate

    stats = generate(args.root, lines=args.lines, seed=args.seed, odd_rate=args.odd_rate)
    print(
        f"wrote {stats.lines:,} lines in {stats.files:,} files under {args.root / 'projects'}: "
        f"{stats.usage_lines:,} usage lines, {stats.bad_lines:,} malformed"
    )
    return 0
