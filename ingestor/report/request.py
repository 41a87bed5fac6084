"""What a report asks for: one frozen value read from the command line or a query string. Pure.

The CLI builds it from flags; when the worker answers instead (it holds the embedded ClickHouse),
it travels as the query string of ``/report/{kind}/`` and is read back here, so both paths
validate the same way and a bad value is a 400 naming the parameter, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingestor.errors import ConfigError
from ingestor.usage.periods import WeekDay
from ingestor.usage.prices import CostMode
from ingestor.usage.reports_core import Order

__all__ = ["EVENT_KINDS", "KINDS", "USAGE_KINDS", "ReportRequest"]

USAGE_KINDS = ("daily", "weekly", "monthly", "session", "blocks", "models", "skipped")
# Over the SDK's events and the billing ledger (``report/events.py``).
EVENT_KINDS = ("events", "costs", "errors", "trace", "projects", "ledger", "alerts", "latency")
KINDS = USAGE_KINDS + EVENT_KINDS
# Answers that read nothing but stored usage (``ReportRequest.keepable``).
_KEPT_KINDS = frozenset({"daily", "weekly", "monthly", "session", "models"})
_MAX_LIMIT = 100_000
_DAY = re.compile(r"\d{4}-?\d{2}-?\d{2}")
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]+")


@dataclass(frozen=True, slots=True)
class ReportRequest:
    kind: str
    since: str | None = None  # YYYYMMDD, inclusive, a day in ``tz``
    until: str | None = None
    tz: str = "UTC"
    mode: CostMode = CostMode.AUTO
    order: Order = "asc"
    instances: bool = False  # daily: one row group per project
    project: str | None = None
    start_of_week: WeekDay = "sunday"
    last: int | None = None  # daily/weekly/monthly: the last N periods up to today
    active: bool = False  # blocks
    recent: bool = False
    token_limit: str | None = None  # blocks: a number or "max"
    session_length: float = 5.0  # blocks: hours
    machines: bool = False  # ours: one report per dedup scope (machine)
    run_id: str | None = None  # trace: the agent run
    limit: int = 50  # events, alerts: how many of the newest

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", CostMode(self.mode))
        except ValueError as exc:
            raise ConfigError(f"--mode {self.mode!r}: auto, calculate or display") from exc
        if self.kind not in KINDS:
            raise ConfigError(f"unknown report {self.kind!r}: one of {', '.join(KINDS)}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not _valid_day(value):
                raise ConfigError(f"--{name} {value!r}: expected a date as YYYYMMDD or YYYY-MM-DD")
            if value is not None:
                object.__setattr__(self, name, value.replace("-", ""))
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"--since {self.since} is after --until {self.until}")
        if not _ZONE.fullmatch(self.tz) or not _zone_exists(self.tz):
            raise ConfigError(f"unknown time zone {self.tz!r}: use an IANA name like Europe/Paris")
        if self.order not in get_args(Order):
            raise ConfigError(f"--order {self.order!r}: asc or desc")
        if self.start_of_week not in get_args(WeekDay):
            raise ConfigError(f"--start-of-week {self.start_of_week!r}: a day name like monday")
        if self.last is not None and self.last < 1:
            raise ConfigError(f"--last {self.last}: at least 1")
        if self.token_limit not in (None, "max") and not str(self.token_limit).isdigit():
            raise ConfigError(f"--token-limit {self.token_limit!r}: a number or max")
        if not 0 < self.session_length <= 24 * 7:
            raise ConfigError(f"--session-length {self.session_length}: hours, above 0")
        if not 1 <= self.limit <= _MAX_LIMIT:
            raise ConfigError(f"--limit {self.limit}: 1 to {_MAX_LIMIT}")
        if self.kind == "trace" and not self.run_id:
            raise ConfigError("trace needs a RUN_ID: ingestor report trace RUN_ID")
        if self.run_id is not None and self.kind != "trace":
            raise ConfigError(f"a RUN_ID is for trace, not {self.kind}")

    @property
    def keepable(self) -> bool:
        """Whether the answer depends on the stored data alone, so it may be kept while that
        stays the same: not ``--last`` nor ``blocks`` (they count from the clock), nor the
        events' reports (``report/answers.py`` and ``report/kept.py`` keep the others)."""
        return self.kind in _KEPT_KINDS and self.last is None

    def to_query(self) -> dict[str, str]:
        """Every field that differs from its default, as text."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "kind" and value != f.default:
                out[f.name] = _text(value)
        return out

    @classmethod
    def from_query(cls, kind: str, query: Mapping[str, str]) -> ReportRequest:
        """The request ``to_query`` wrote; ``ConfigError`` names a bad or unknown parameter."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, text in query.items():
            field = known.get(name)
            if field is None or name == "kind":
                raise ConfigError(f"unknown parameter {name!r}")
            values[name] = _parse(name, str(field.type), text)
        return cls(kind, **values)


def _valid_day(value: str) -> bool:
    if not _DAY.fullmatch(value):
        return False
    digits = value.replace("-", "")
    month, day = int(digits[4:6]), int(digits[6:8])
    return 1 <= month <= 12 and 1 <= day <= 31


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _parse(name: str, type_name: str, text: str) -> Any:
    try:
        if type_name == "bool":
            if text not in ("0", "1"):
                raise ValueError(text)
            return text == "1"
        if type_name.startswith("int"):
            return int(text)
        if type_name == "float":
            return float(text)
        if type_name == "CostMode":
            return CostMode(text)
    except ValueError as exc:
        raise ConfigError(f"parameter {name}={text!r} is not a valid {type_name}") from exc
    return text
