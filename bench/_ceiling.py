"""One measurement in a fresh process, so its CPU and peak RSS are its own; used by ``bench.e2e``.

``python -m bench._ceiling baseline`` — the embedded engine alone: python + ``import chdb`` + one
session answering ``SELECT 1``.
``python -m bench._ceiling raw BOOTSTRAP TOPIC MESSAGES`` — ``bench.ceilings.raw_consume``.
``python -m bench._ceiling chdb CORPUS_ROOT`` — ``bench.ceilings.chdb_direct``.

Prints one JSON object on its last stdout line: ``lines``, ``seconds``, ``cpu_seconds`` and
``peak_rss_mb`` (VmHWM, the process's high-water mark).
Imports stay inside the branches so the baseline loads nothing but chdb.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def vm_hwm_mb() -> float:
    """This process's peak resident set (``VmHWM``) in MB, 0.0 off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _baseline() -> dict[str, Any]:
    import tempfile

    from chdb import session

    new_session: Any = session.Session  # untyped library
    with tempfile.TemporaryDirectory(prefix="chdb-baseline-") as scratch:
        db = new_session(scratch)
        try:
            db.query("SELECT 1", "CSV")
        finally:
            db.close()
        return {"lines": 0, "seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": vm_hwm_mb()}


def main(argv: list[str]) -> int:
    if argv[:1] == ["baseline"] and len(argv) == 1:
        body = _baseline()
    elif argv[:1] == ["raw"] and len(argv) == 4:
        from bench.ceilings import raw_consume

        fig = raw_consume(argv[1], argv[2], int(argv[3]))
        body = {"lines": fig.lines, "seconds": fig.seconds, "cpu_seconds": fig.cpu_seconds}
        body["peak_rss_mb"] = vm_hwm_mb()
    elif argv[:1] == ["chdb"] and len(argv) == 2:
        from pathlib import Path

        from bench.ceilings import chdb_direct

        fig = chdb_direct(Path(argv[1]))
        body = {"lines": fig.lines, "seconds": fig.seconds, "cpu_seconds": fig.cpu_seconds}
        body["peak_rss_mb"] = vm_hwm_mb()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(body), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
