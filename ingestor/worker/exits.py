"""The worker's exit statuses, for supervisors (``ingestor up``) as much as for the worker.

Kept apart from the worker (``app.py``, ``flusher.py``, ``restart.py``) so that a supervisor can
read them without importing Faust.
"""

from __future__ import annotations

__all__ = ["EXIT_BAD_INPUT", "EXIT_OFFSET_GAP", "EXIT_STORAGE_FAILED", "FINAL"]

EXIT_BAD_INPUT = 65  # EX_DATAERR: the dead-letter limit stopped the worker
EXIT_STORAGE_FAILED = 75  # EX_TEMPFAIL: the batch will be re-delivered on restart
EXIT_OFFSET_GAP = 76  # Faust skipped records: restart to have them re-delivered
FINAL = frozenset({EXIT_BAD_INPUT})  # restarting would not help: the input needs a look
