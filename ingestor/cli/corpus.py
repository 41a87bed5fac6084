"""``ingestor corpus ROOT``: write a realistic synthetic Claude Code transcript tree."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "corpus", help="generate a synthetic transcript tree"
    )
    p.add_argument("root", type=Path, help="writes ROOT/projects/<project>/<session>.jsonl")
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ingestor.corpus.generate import generate

    stats = generate(args.root, lines=args.lines, seed=args.seed)
    print(stats)
    return 0
