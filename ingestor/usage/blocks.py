"""``blocks``: usage in ccusage's 5-hour billing windows, with gaps, burn rate and projection.

Pure: "now" is the ``now_ms`` argument. Follows ``rust/crates/ccusage/src/blocks.rs`` and
``commands::run_blocks`` of ccusage 20.0.24:

- Windows (``identify_session_blocks``): entries sorted by timestamp (stable); a window starts at
  its first entry's time floored to the UTC hour and closes when an entry comes more than
  ``session_length`` after the window's start or after the previous entry. When the silence
  itself exceeds ``session_length`` a gap block follows, from last entry + length to the next
  entry. Blocks are then *sorted by start* (``sort_blocks``), which can put a window before the
  gap that precedes it, as ccusage does.
- ``isActive``: now - last entry < length and now < window end.
- ``session_length`` (``-n``, hours, default 5, must be > 0): truncated to whole milliseconds.
- ``since``/``until`` (``-s``/``-u``): the day of a block's *start* in ``tz``, gaps included
  (``filter_blocks_by_date``).
- ``order`` (``-o``, default ``asc``): by start; ``desc`` is the reversed ascending list.
- ``recent`` (``-r``): blocks starting within 3 days before ``now_ms``, or active.
- ``active`` (``-a``): active blocks only.
- ``token_limit`` (``-t``): a number, or ``"max"``/``""`` for the most tokens in any listed
  finished non-gap block (after the filters above); it only adds ``tokenLimitStatus`` to an active
  block with a projection (``block_json``).
- ``burnRate``/``projection`` only on an active block spanning more than 0 ms of entries;
  ``projection.totalCost`` is rounded to cents, tokens and minutes half away from zero.
- ``usageLimitResetTime``: the first one among the block's entries, when any.

Costs are ``Decimal`` (``costUSD``, ``costPerHour``, ``projection.totalCost``); token rates are
``float`` computed exactly as ccusage's ``f64``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from ingestor.usage.entry import Entry
from ingestor.usage.reports_core import (
    Json,
    Order,
    in_bounds,
    iso_ms,
    local_date,
    normalize_bound,
    zone,
)

__all__ = ["blocks"]

_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000
_RECENT_MS = 3 * 24 * _HOUR_MS
_WARNING_SHARE = 0.8
_CENT = Decimal("0.01")


@dataclass(slots=True)
class _Block:
    start_ms: int
    end_ms: int
    entries: list[Entry] = field(default_factory=list)
    is_gap: bool = False
    is_active: bool = False

    @property
    def total_tokens(self) -> int:
        return sum(entry.total_tokens for entry in self.entries)

    @property
    def cost(self) -> Decimal:
        return sum((entry.cost for entry in self.entries), Decimal(0))


def blocks(
    entries: Sequence[Entry],
    *,
    tz: str,
    now_ms: int,
    since: str | None = None,
    until: str | None = None,
    order: Order = "asc",
    active: bool = False,
    recent: bool = False,
    token_limit: str | int | None = None,
    session_length: float = 5.0,
) -> Json:
    """``ccusage claude blocks --json`` as of ``now_ms``."""
    if session_length <= 0:
        raise ValueError("Session length must be a positive number")
    length_ms = int(session_length * _HOUR_MS)
    found = _identify(entries, length_ms, now_ms)
    since, until = normalize_bound(since), normalize_bound(until)
    if since or until:
        zone_ = zone(tz)
        found = [
            block
            for block in found
            if in_bounds(local_date(block.start_ms, zone_).isoformat(), since, until)
        ]
    found.sort(key=lambda block: block.start_ms)
    if order == "desc":
        found.reverse()
    if recent:
        found = [b for b in found if b.start_ms >= now_ms - _RECENT_MS or b.is_active]
    if active:
        found = [b for b in found if b.is_active]
    max_tokens = max(
        (b.total_tokens for b in found if not b.is_gap and not b.is_active),
        default=0,
    )
    limit = None if token_limit is None else _parse_limit(str(token_limit), max_tokens)
    return {"blocks": [_block_json(b, now_ms, limit) for b in found]}


def _identify(entries: Sequence[Entry], length_ms: int, now_ms: int) -> list[_Block]:
    ordered = sorted(entries, key=lambda entry: entry.timestamp_ms)
    found: list[_Block] = []
    current: _Block | None = None
    for entry in ordered:
        if current is not None:
            last_ms = current.entries[-1].timestamp_ms
            since_last = entry.timestamp_ms - last_ms
            if entry.timestamp_ms - current.start_ms > length_ms or since_last > length_ms:
                found.append(_close(current, now_ms, length_ms))
                if since_last > length_ms:
                    found.append(_Block(last_ms + length_ms, entry.timestamp_ms, is_gap=True))
                current = None
        if current is None:
            start = entry.timestamp_ms // _HOUR_MS * _HOUR_MS
            current = _Block(start, start + length_ms)
        current.entries.append(entry)
    if current is not None:
        found.append(_close(current, now_ms, length_ms))
    return found


def _close(block: _Block, now_ms: int, length_ms: int) -> _Block:
    last_ms = block.entries[-1].timestamp_ms
    block.is_active = now_ms - last_ms < length_ms and now_ms < block.end_ms
    return block


def _parse_limit(value: str, max_tokens: int) -> int | None:
    if value in ("", "max"):
        return max_tokens if max_tokens > 0 else None
    digits = value[1:] if value.startswith("+") else value  # Rust's u64 parse takes a "+"
    return int(digits) if digits.isascii() and digits.isdigit() else None


def _round_half_away(value: float) -> int:
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def _block_json(block: _Block, now_ms: int, limit: int | None) -> Json:
    input_tokens = sum(e.input_tokens for e in block.entries)
    output_tokens = sum(e.output_tokens for e in block.entries)
    models: list[str] = []
    for entry in block.entries:
        if entry.model is not None and entry.model not in models:
            models.append(entry.model)
    reset = next(
        (e.usage_limit_reset_ms for e in block.entries if e.usage_limit_reset_ms is not None),
        None,
    )
    total = block.total_tokens
    cost = block.cost
    burn: Json | None = None
    projection: Json | None = None
    status: Json | None = None
    span_ms = block.entries[-1].timestamp_ms - block.entries[0].timestamp_ms if block.entries else 0
    if block.is_active and not block.is_gap and span_ms > 0:
        minutes = span_ms / _MINUTE_MS
        per_minute = total / minutes
        per_hour = cost * _HOUR_MS / span_ms
        burn = {
            "tokensPerMinute": per_minute,
            "tokensPerMinuteForIndicator": (input_tokens + output_tokens) / minutes,
            "costPerHour": per_hour,
        }
        remaining = _round_half_away((block.end_ms - now_ms) / _MINUTE_MS)
        projected = _round_half_away(total + per_minute * remaining)
        projection = {
            "totalTokens": projected,
            "totalCost": (cost + per_hour / 60 * remaining).quantize(_CENT, ROUND_HALF_UP),
            "remainingMinutes": remaining,
        }
        if limit is not None:
            status = {
                "limit": limit,
                "projectedUsage": projected,
                # ccusage divides f64s; x/0 is inf or NaN, which serde_json prints as null.
                "percentUsed": projected / limit * 100.0 if limit else None,
                "status": "exceeds"
                if projected > limit
                else "warning"
                if projected > limit * _WARNING_SHARE
                else "ok",
            }
    out: Json = {
        "id": f"gap-{iso_ms(block.start_ms)}" if block.is_gap else iso_ms(block.start_ms),
        "startTime": iso_ms(block.start_ms),
        "endTime": iso_ms(block.end_ms),
        "actualEndTime": iso_ms(block.entries[-1].timestamp_ms) if block.entries else None,
        "isActive": block.is_active,
        "isGap": block.is_gap,
        "entries": len(block.entries),
        "tokenCounts": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "cacheCreationInputTokens": sum(e.cache_creation_tokens for e in block.entries),
            "cacheReadInputTokens": sum(e.cache_read_tokens for e in block.entries),
        },
        "totalTokens": total,
        "costUSD": cost,
        "models": models,
        "burnRate": burn,
        "projection": projection,
    }
    if status is not None:
        out["tokenLimitStatus"] = status
    if reset is not None:
        out["usageLimitResetTime"] = iso_ms(reset)
    return out
