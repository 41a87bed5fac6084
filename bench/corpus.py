"""Where the benchmarks keep their files, and the generated corpora they share (cached)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["OUT", "ROOT", "ensure_corpus"]

ROOT = Path(__file__).resolve().parents[1]  # the repository: `-m bench._ceiling` runs from here
OUT = ROOT / "bench" / "out"


def ensure_corpus(lines: int, seed: int) -> tuple[Path, dict[str, Any], float | None]:
    """The cached corpus for ``(lines, seed)``: root, its ``CorpusStats``, seconds if generated."""
    from ingestor.corpus.generate import generate

    root = OUT / "corpus" / f"lines-{lines}-seed-{seed}"
    marker = root / "corpus.json"  # written last: its presence means the tree is complete
    if marker.is_file():
        return root, dict(json.loads(marker.read_text())), None
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    stats = asdict(generate(root, lines=lines, seed=seed))
    marker.write_text(json.dumps(stats, indent=1))
    return root, stats, time.perf_counter() - started
