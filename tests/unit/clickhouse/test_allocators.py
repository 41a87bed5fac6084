from __future__ import annotations

import subprocess
import sys

from ingestor.clickhouse.allocators import JEMALLOC_DEFAULTS, jemalloc_conf


def test_without_options_of_its_own_jemalloc_gets_ours() -> None:
    assert jemalloc_conf(None) == JEMALLOC_DEFAULTS
    assert jemalloc_conf("") == JEMALLOC_DEFAULTS
    assert jemalloc_conf(" , ") == JEMALLOC_DEFAULTS


def test_options_a_person_set_come_last_so_they_win() -> None:
    # jemalloc applies a string's pairs in order: a key set twice keeps the last value.
    assert jemalloc_conf("dirty_decay_ms:5000", "dirty_decay_ms:1000") == (
        "dirty_decay_ms:1000,dirty_decay_ms:5000"
    )
    assert jemalloc_conf("narenas:1,", "dirty_decay_ms:1000") == "dirty_decay_ms:1000,narenas:1"


def test_refused_pandas_is_not_imported_by_pyarrow() -> None:
    # In a fresh process: the refusal holds for the rest of it.
    code = (
        "import sys\n"
        "from ingestor.clickhouse.allocators import refuse_pandas\n"
        "assert refuse_pandas()\n"
        "import pyarrow as pa\n"
        "assert pa.array([1, 2]).to_pylist() == [1, 2]\n"
        "assert 'pandas' not in sys.modules\n"
        "try:\n"
        "    import pandas  # noqa: F401\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('pandas imported')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
