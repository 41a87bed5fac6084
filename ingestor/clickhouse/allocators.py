"""Allocator options for a process that embeds chdb: freed memory goes back to the system.

Two allocators besides Python's hold memory in a worker, and both keep what was freed:

* chdb's ClickHouse allocates through its own jemalloc (statically linked, options from
  ``JE_MALLOC_CONF``), built to keep freed pages for 5 s (``dirty_decay_ms:5000``). Every insert
  and winners query allocates and frees tens of MB, so a worker storing a batch a second kept
  100-150 MB of freed pages resident on top of ~70 MB in use (``system.jemalloc_stats``,
  100k lines). With 1 s and no background thread (chdb's build starts none) jemalloc still
  kept 100-220 MB dirty at 65-80 MB allocated (300k lines): an arena purges only when it next
  allocates, and decay is gradual over the period. So freed pages go back within 100 ms
  (``dirty_decay_ms:100``) and a background thread purges what an idle arena holds. At once
  (``0``: resident within ~10 MB of allocated) cost the worker 16% more CPU over a 1M backfill
  (137 against 115 CPU-s, one ``madvise`` per free) for 24-44 MB less at its peak. jemalloc
  reads its options once, when chdb's library loads: they must be in the environment before
  ``chdb`` is imported.
* pyarrow's default pool (mimalloc) kept ~68 MB resident in its 1 GiB arena while the pool
  reported under 10 MB allocated: Arrow batches are built in the insert thread, whose pages
  mimalloc keeps for reuse. The system pool (glibc) returns large buffers on free.

Options a person set in ``JE_MALLOC_CONF`` or ``ARROW_DEFAULT_MEMORY_POOL`` win.

``refuse_pandas`` (the worker, at its start) keeps pandas out of a process that never uses it:
pyarrow imports it on its first ``pa.array`` only to ask whether the input is a pandas object,
and the import cost ~30 MB of anonymous memory and ~17 MB of mapped libraries.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["JEMALLOC_DEFAULTS", "configure_allocators", "jemalloc_conf", "refuse_pandas"]

# Freed pages go back within 100 ms: 1000 ms kept 100-200 MB dirty at a backfill's peaks, 0 cost
# the worker 16% more CPU (bench.backfill and a 1M pair, both in one window).
JEMALLOC_DEFAULTS = "dirty_decay_ms:100,background_thread:true"
_JEMALLOC_ENV = "JE_MALLOC_CONF"
_ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def jemalloc_conf(existing: str | None, defaults: str = JEMALLOC_DEFAULTS) -> str:
    """``JE_MALLOC_CONF`` with ``defaults`` under ``existing``: jemalloc applies the pairs of a
    string in order, so a key the person set comes last and wins."""
    existing = (existing or "").strip().strip(",")
    return f"{defaults},{existing}" if existing else defaults


def configure_allocators() -> None:
    """Set chdb's jemalloc options (effective only if chdb is not loaded yet) and Arrow's pool."""
    os.environ[_JEMALLOC_ENV] = jemalloc_conf(os.environ.get(_JEMALLOC_ENV))
    if not os.environ.get(_ARROW_POOL_ENV):
        pa.set_memory_pool(pa.system_memory_pool())


class _NoPandas:
    """A meta path finder that answers "not installed" for pandas: pyarrow (and chdb's
    Python table function) then take the path they take where pandas is absent."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"{name} is not loaded in this process", name=name)
        return None


def refuse_pandas() -> bool:
    """Make ``import pandas`` fail from now on; False if it was already imported."""
    if "pandas" in sys.modules:
        return False
    if not any(isinstance(finder, _NoPandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())
    return True
