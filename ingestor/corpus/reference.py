"""ccusage's numbers recomputed from a transcript tree: the oracle for tests and benchmarks.

Deliberately simple and independent of the product: plain ``json`` and dicts, no
``ingestor.models`` parsing, one pass in ccusage's order. Only pricing is shared
(``ingestor.pricing.line_cost``, which needs a ``Usage``), and it can be injected.

Order: every ``*.jsonl`` under ``root/projects``, files sorted by their earliest timestamp (any
JSON object's parseable ``timestamp``), files without one last, ties by path; lines in file order;
blank lines skipped. A line is *invalid* (the product dead-letters it) when it is not JSON, not an
object, has no string ``type``, has an unparseable ``timestamp``, or carries ``message.usage``
that is not a dict of non-negative int tokens, lacks a timestamp, or has a ``costUSD`` that is not
a non-negative number. The dedup rule is ARCHITECTURE.md's, applied in that order; for rule 3 a
usage line counts as "seen" even when it was itself dropped (as a query over stored lines sees it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ingestor.models import Usage

__all__ = ["Accounting", "Entry", "Pricer", "Reference", "Totals"]

Pricer = Callable[[str | None, Usage], Decimal]
SYNTHETIC = "<synthetic>"
_TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_SPLIT = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
_LINE_STRINGS = ("sessionId", "uuid", "parentUuid", "requestId", "cwd", "version")


@dataclass(frozen=True)
class Entry:
    """One counted usage line (a dedup winner, or a line without ``message.id``)."""

    timestamp: datetime
    session: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: Decimal
    is_sidechain: bool


@dataclass
class Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost: Decimal = Decimal(0)
    entries: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def add(self, e: Entry) -> None:
        self.input_tokens += e.input_tokens
        self.output_tokens += e.output_tokens
        self.cache_creation_tokens += e.cache_creation_tokens
        self.cache_read_tokens += e.cache_read_tokens
        self.cost += e.cost
        self.entries += 1


@dataclass(frozen=True)
class Accounting:
    """Where every non-blank line went: ``lines == valid + invalid``,
    ``usage_lines == counted + duplicates`` (duplicates include dropped sidechain replays)."""

    lines: int
    valid: int
    invalid: int
    usage_lines: int
    counted: int
    duplicates: int


@dataclass(frozen=True)
class Reference:
    """ccusage's view of a tree; build it with ``Reference.load(root)``."""

    entries: list[Entry]
    accounting: Accounting

    @classmethod
    def load(cls, root: Path, *, price: Pricer | None = None) -> Reference:
        """Read ``root/projects``; ``price`` defaults to ``ingestor.pricing.line_cost``."""
        if price is None:
            from ingestor.pricing import line_cost

            price = line_cost
        counts = {"lines": 0, "valid": 0, "usage": 0}
        kept: list[Entry] = []
        slot: dict[tuple[str, str], int] = {}  # dedup key -> index of its current winner in kept
        requests: dict[str, set[str]] = {}  # message.id -> every requestId seen with it
        for path in _ordered_files(root / "projects"):
            for obj in _objects(path, counts):
                c = _entry(obj, path, price)
                if c is None:
                    continue
                counts["usage"] += 1
                msg_id = obj["message"].get("id")
                if msg_id is None:  # rule 1
                    kept.append(c)
                    continue
                req = obj.get("requestId") or ""
                seen = requests.setdefault(msg_id, set())
                replay = c.is_sidechain and bool(seen - {req})  # rule 3
                seen.add(req)
                if replay:
                    continue
                key = (msg_id, req)  # rule 2
                if key not in slot:
                    slot[key] = len(kept)
                    kept.append(c)
                elif _better(c, kept[slot[key]]):  # rule 4
                    kept[slot[key]] = c
        lines, valid, usage = counts["lines"], counts["valid"], counts["usage"]
        acc = Accounting(lines, valid, lines - valid, usage, len(kept), usage - len(kept))
        return cls(kept, acc)

    def totals(self) -> Totals:
        out = Totals()
        for e in self.entries:
            out.add(e)
        return out

    def daily(self, tz: str = "UTC") -> dict[str, Totals]:
        """``YYYY-MM-DD`` in ``tz`` -> totals, sorted by date."""
        zone = ZoneInfo(tz)
        return self._group(lambda e: e.timestamp.astimezone(zone).strftime("%Y-%m-%d"))

    def monthly(self, tz: str = "UTC") -> dict[str, Totals]:
        zone = ZoneInfo(tz)
        return self._group(lambda e: e.timestamp.astimezone(zone).strftime("%Y-%m"))

    def sessions(self) -> dict[str, Totals]:
        return self._group(lambda e: e.session)

    def models(self) -> dict[str, Totals]:
        """Per model; ``<synthetic>`` lines are left out, lines without a model are "unknown"."""
        return self._group(lambda e: None if e.model == SYNTHETIC else e.model or "unknown")

    def _group(self, key: Callable[[Entry], str | None]) -> dict[str, Totals]:
        out: dict[str, Totals] = {}
        for e in self.entries:
            k = key(e)
            if k is not None:
                out.setdefault(k, Totals()).add(e)
        return dict(sorted(out.items()))


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


_INVALID = object()


def _read(path: Path) -> Iterator[Any]:
    """Each non-blank line as parsed JSON, or ``_INVALID``. orjson, like JSON.parse, rejects NaN."""
    with path.open("rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                yield orjson.loads(raw)
            except orjson.JSONDecodeError:
                yield _INVALID


def _ordered_files(projects: Path) -> list[Path]:
    def key(path: Path) -> tuple[bool, datetime, str]:
        stamps = (_parse_ts(o.get("timestamp")) for o in _read(path) if isinstance(o, dict))
        first = min((t for t in stamps if t is not None), default=None)
        return (first is None, first or datetime.min.replace(tzinfo=UTC), path.as_posix())

    return sorted(projects.rglob("*.jsonl"), key=key)


def _objects(path: Path, counts: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The valid lines of ``path``, in order; counts every line and every valid one."""
    for obj in _read(path):
        counts["lines"] += 1
        if _valid(obj):
            counts["valid"] += 1
            yield obj


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _str_or_none(d: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return all(d.get(k) is None or isinstance(d[k], str) for k in keys)


def _valid(obj: Any) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return False
    if not _str_or_none(obj, _LINE_STRINGS):
        return False
    if obj.get("timestamp") is not None and _parse_ts(obj["timestamp"]) is None:
        return False
    message = obj.get("message")
    if message is None:
        return True
    if not isinstance(message, dict) or not _str_or_none(message, ("id", "model")):
        return False
    usage = message.get("usage")
    if usage is None:
        return True
    if not isinstance(usage, dict) or obj.get("timestamp") is None:
        return False
    if "input_tokens" not in usage or "output_tokens" not in usage:
        return False
    if not all(_is_count(usage[k]) for k in _TOKENS if k in usage):
        return False
    split = usage.get("cache_creation")
    if split is not None and not (
        isinstance(split, dict) and all(_is_count(split[k]) for k in _SPLIT if k in split)
    ):
        return False
    cost = obj.get("costUSD")
    return cost is None or (
        isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0
    )


def _better(new: Entry, old: Entry) -> bool:
    # Rule 4: non-sidechain first, then strictly more input + output; ties keep the first.
    new_total, old_total = (
        new.input_tokens + new.output_tokens,
        old.input_tokens + old.output_tokens,
    )
    return (not new.is_sidechain, new_total) > (not old.is_sidechain, old_total)


def _entry(obj: dict[str, Any], path: Path, price: Pricer) -> Entry | None:
    """The line as an ``Entry`` if it is a (valid) usage line, else None."""
    message = obj.get("message")
    if not isinstance(message, dict) or message.get("usage") is None:
        return None
    u = message["usage"]
    split = u.get("cache_creation") or {}
    creation = sum(split.get(k, 0) for k in _SPLIT) or u.get("cache_creation_input_tokens", 0)
    model = message.get("model")
    cost_usd = obj.get("costUSD")
    # Rule 6; repr() is a float's shortest exact spelling, as the product reads it.
    cost = price(model, Usage.model_validate(u)) if cost_usd is None else Decimal(repr(cost_usd))
    timestamp = _parse_ts(obj["timestamp"])
    assert timestamp is not None  # _valid guarantees it for usage lines
    return Entry(
        timestamp=timestamp,
        session=obj.get("sessionId") or path.stem,
        model=model,
        input_tokens=u["input_tokens"],
        output_tokens=u["output_tokens"],
        cache_creation_tokens=creation,  # rule 5: the 5m + 1h split when non-zero
        cache_read_tokens=u.get("cache_read_input_tokens", 0),
        cost=cost,
        is_sidechain=obj.get("isSidechain") is True,
    )
