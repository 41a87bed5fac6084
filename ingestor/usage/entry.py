"""One counted usage line, as every report reads it. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A usage line that survived acceptance and dedup (ccusage's ``LoadedEntry``).

    ``model`` is None for ``<synthetic>`` and lines without a model (they count in totals but not
    in ``modelsUsed``/``modelBreakdowns``); a ``speed: "fast"`` line's model carries ``-fast``.
    ``cache_creation_tokens`` is the ephemeral 5m + 1h split when the line has one, else
    ``cache_creation_input_tokens``. ``project`` is the first directory under ``projects/``;
    ``session_id``/``project_path`` are ccusage's ``extract_session_parts`` of the file path.
    ``scope`` is the dedup scope (one machine's transcripts).
    """

    timestamp_ms: int  # Unix epoch milliseconds, UTC
    project: str
    session_id: str
    project_path: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: Decimal  # USD, per the cost mode
    version: str | None = None
    usage_limit_reset_ms: int | None = None
    scope: str = ""
    # A summed entry (several lines of one day, file and model: report/counted.py) is at its
    # first line's instant; this is its last's (the session report's lastActivity).
    last_ms: int | None = None

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )
