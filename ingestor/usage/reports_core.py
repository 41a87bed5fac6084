"""The pieces every ccusage report shares: one row's accumulator, its JSON, totals, dates, bounds.

Pure. Follows ccusage 20.0.24 (source snapshot ``rust/crates/ccusage/src``; the binary wins):

- ``Summary.add`` is ``UsageAccumulator::add_entry`` (``summary.rs``): ``modelsUsed`` in first-seen
  entry order, synthetic/absent models (``Entry.model is None``) count in the tokens and cost but
  get no breakdown.
- ``Summary.merge`` is ``aggregate_summaries``: week/month rows are built from *day rows*, so a
  bucket's breakdowns are first seen in each day's cost-sorted breakdown order, not entry order.
- ``Summary.breakdowns`` sorts by cost descending, stable (``sort_by(b.cost.total_cmp(&a.cost))``).
- ``summary_json``/``totals_json`` are ``output.rs``'s: ``credits`` and ``messageCount`` never
  appear for Claude Code; ``totalTokens`` is the four counts summed.
- ``in_bounds``: ``--since``/``--until`` are compared as strings after deleting every ``-``
  (``normalize_date_bound``, ``filter_and_sort_summaries``), both inclusive, against a
  ``YYYY-MM-DD`` date in the report's time zone.

Costs are ``Decimal`` and summed exactly; ccusage sums ``f64`` (differences stay far below a cent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ingestor.usage.entry import Entry

__all__ = [
    "Json",
    "Order",
    "Summary",
    "in_bounds",
    "iso_ms",
    "local_date",
    "normalize_bound",
    "sort_rows",
    "totals_json",
    "zone",
]

Json = dict[str, Any]
Order = Literal["asc", "desc"]

_ZERO = Decimal(0)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``-z`` names (``ZoneInfoNotFoundError`` for an unknown one)."""
    return ZoneInfo(name)


def local_date(timestamp_ms: int, tz: ZoneInfo) -> date:
    """The calendar day of an instant in ``tz`` (ccusage's ``format_date_tz``)."""
    # Whole seconds are enough for a date and avoid float rounding near midnight.
    return datetime.fromtimestamp(timestamp_ms // 1000, tz).date()


def iso_ms(timestamp_ms: int) -> str:
    """``2025-09-08T05:12:28.276Z``: ccusage's ``format_rfc3339_millis``, always UTC."""
    seconds, millis = divmod(timestamp_ms, 1000)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_iso_day(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _iso_day(days: int) -> str:
    # A day's text once: formatting a datetime was most of a large session report's time.
    return f"{datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=days):%Y-%m-%d}"


def normalize_bound(value: str | None) -> str | None:
    """``2025-09-08`` and ``20250908`` are the same bound (ccusage deletes every ``-``)."""
    return None if value is None else value.replace("-", "")


def in_bounds(day: str, since: str | None, until: str | None) -> bool:
    """Whether ``day`` (``YYYY-MM-DD``) passes normalized inclusive bounds, as strings."""
    compact = day.replace("-", "")
    return (since is None or compact >= since) and (until is None or compact <= until)


def sort_rows(rows: list[tuple[str, Summary]], order: Order) -> list[tuple[str, Summary]]:
    """Stable sort by label; ``desc`` keeps equal labels in their ascending-build order."""
    return sorted(rows, key=lambda row: row[0], reverse=order == "desc")


@dataclass(slots=True)
class _Breakdown:
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost: Decimal = _ZERO

    def json(self) -> Json:
        return {
            "modelName": self.model,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheCreationTokens": self.cache_creation_tokens,
            "cacheReadTokens": self.cache_read_tokens,
            "cost": self.cost,
        }


class Summary:
    """Token counts, cost and per-model breakdowns of one report row."""

    __slots__ = (
        "_breakdowns",
        "cache_creation_tokens",
        "cache_read_tokens",
        "cost",
        "entries",
        "input_tokens",
        "models",
        "output_tokens",
    )

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_creation_tokens = 0
        self.cache_read_tokens = 0
        self.cost = _ZERO
        self.entries = 0  # how many entries were added (not printed by ccusage)
        self.models: list[str] = []
        self._breakdowns: dict[str, _Breakdown] = {}  # insertion order is the tie-break

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def add(self, entry: Entry) -> None:
        self.input_tokens += entry.input_tokens
        self.output_tokens += entry.output_tokens
        self.cache_creation_tokens += entry.cache_creation_tokens
        self.cache_read_tokens += entry.cache_read_tokens
        self.cost += entry.cost
        self.entries += 1
        if entry.model is None:
            return
        item = self._breakdowns.get(entry.model)
        if item is None:
            item = self._breakdowns[entry.model] = _Breakdown(entry.model)
            self.models.append(entry.model)
        item.input_tokens += entry.input_tokens
        item.output_tokens += entry.output_tokens
        item.cache_creation_tokens += entry.cache_creation_tokens
        item.cache_read_tokens += entry.cache_read_tokens
        item.cost += entry.cost

    def merge(self, row: Summary) -> None:
        """Fold a finished row in, as ``aggregate_summaries`` folds day rows into a bucket."""
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens
        self.cache_creation_tokens += row.cache_creation_tokens
        self.cache_read_tokens += row.cache_read_tokens
        self.cost += row.cost
        for model in row.models:
            if model not in self.models:
                self.models.append(model)
        for part in row.breakdowns():
            item = self._breakdowns.setdefault(part.model, _Breakdown(part.model))
            item.input_tokens += part.input_tokens
            item.output_tokens += part.output_tokens
            item.cache_creation_tokens += part.cache_creation_tokens
            item.cache_read_tokens += part.cache_read_tokens
            item.cost += part.cost

    def breakdowns(self) -> list[_Breakdown]:
        # Python's sort is stable under reverse=True, like Rust's sort_by on the reversed compare.
        return sorted(self._breakdowns.values(), key=lambda item: item.cost, reverse=True)

    def json(self, **labels: str) -> Json:
        """``summary_json``: the counts plus the label keys given (date/week/month/project)."""
        return {
            **labels,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheCreationTokens": self.cache_creation_tokens,
            "cacheReadTokens": self.cache_read_tokens,
            "totalTokens": self.total_tokens,
            "totalCost": self.cost,
            "modelsUsed": list(self.models),
            "modelBreakdowns": [item.json() for item in self.breakdowns()],
        }


def totals_json(rows: list[Summary]) -> Json:
    """``totals_json``: the sums of the rows that are printed (after every filter)."""
    total = Summary()
    for row in rows:
        total.input_tokens += row.input_tokens
        total.output_tokens += row.output_tokens
        total.cache_creation_tokens += row.cache_creation_tokens
        total.cache_read_tokens += row.cache_read_tokens
        total.cost += row.cost
    return {
        "inputTokens": total.input_tokens,
        "outputTokens": total.output_tokens,
        "cacheCreationTokens": total.cache_creation_tokens,
        "cacheReadTokens": total.cache_read_tokens,
        "totalTokens": total.total_tokens,
        "totalCost": total.cost,
    }
