"""chdb's jemalloc and Arrow's pool take the options ``clickhouse/allocators.py`` sets, in a fresh
process (jemalloc reads its options once, when chdb's library loads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

_PROBE = """
import sys
from pathlib import Path
import pyarrow as pa
from ingestor.plain_settings import ClickHouseTarget
from ingestor.clickhouse.chdb_engine import ChdbClickHouse

ch = ChdbClickHouse(ClickHouseTarget(kind="chdb", database="probe", path=Path(sys.argv[1])))
stats = ch.query("SELECT * FROM system.jemalloc_stats")[0][0]
ch.close()
def opt(name):
    [line] = [l for l in stats.splitlines() if l.strip().startswith(f"opt.{name}:")]
    return line.split(":")[1].split()[0]
print(opt("dirty_decay_ms"), opt("background_thread"), pa.default_memory_pool().backend_name)
"""


def _probe(tmp_path: Path, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("JE_MALLOC_CONF",)}
    environ.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "chdb")],
        env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_chdb_returns_freed_pages_within_100_ms_and_arrow_uses_the_system_pool(
    tmp_path: Path,
) -> None:
    assert _probe(tmp_path) == ["100", "true", "system"]


def test_options_a_person_set_win(tmp_path: Path) -> None:
    options = {"JE_MALLOC_CONF": "dirty_decay_ms:3000", "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    assert _probe(tmp_path, **options) == ["3000", "true", "mimalloc"]
