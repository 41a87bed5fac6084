"""Which stored usage lines count, decided group by group, and the change to write. Pure.

ccusage's duplicate rule (``dedup.py``) only ever compares lines of one ``message.id``: a line
competes by key ``(message.id, requestId | sessionId)`` or, as a sidechain replay, by
``message.id`` and instant; a replacing line keeps its slot's message id. Within one dedup
scope (one machine's transcripts, ccusage's whole run), the lines of a ``(scope, message_id)``
group are therefore decided by that group's copies alone, pushed in ccusage's order (file path,
then offset, current generation of each file only); other groups change nothing in it. A line
without ``message.id`` is a group of its own and always counts.

So the counted set can be kept at write time: after a batch is stored, every group the batch
touched is decided again from all its stored copies (``decide``) and compared with what is
recorded as counted (``diff``): +1 for a line that now counts, -1 for one that no longer does.
Being a comparison with stored state, deciding a group again after a retry, a replay or a crash
writes nothing new, and deciding more groups than needed is harmless.

Each counted line also records its *slot*: the copy whose arrival made its place in ccusage's
list (a replacing line takes the place of the one it beat). Reports order entries by
``(scope, slot)``, which is the order of ccusage's list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, TypeVar

from ingestor.usage.dedup import Copy, Deduper, Outcome, should_replace

__all__ = [
    "COLUMNS",
    "KEY_COLUMNS",
    "CountedChange",
    "CountedKey",
    "Decidable",
    "StoredCopy",
    "changes",
    "decide",
    "diff",
]


class Decidable(Protocol):
    """What ``decide`` reads of a stored usage line: where it is, and its ``Copy``."""

    @property
    def dedup_scope(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def source_file(self) -> str: ...
    @property
    def source_generation(self) -> int: ...
    @property
    def source_offset(self) -> int: ...
    def copy(self) -> Copy: ...


C = TypeVar("C", bound=Decidable)


class StoredCopy(NamedTuple):
    """One stored usage line: ``usage_copies``' columns, the timestamp as epoch milliseconds."""

    dedup_scope: str
    message_id: str  # '' when the line has none
    source_file: str
    source_generation: int
    source_offset: int
    request_id: str
    line_session_id: str
    is_sidechain: int
    speed: str
    timestamp: int
    model: str
    version: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: Decimal
    has_cost_usd: int
    cost_calculated: Decimal
    usage_limit_reset_ms: int
    tool_uses: tuple[str, ...] = ()  # not read by the rule: what the live sessions count

    def copy(self) -> Copy:
        return Copy(
            self.message_id or None,
            self.request_id or None,
            bool(self.is_sidechain),
            self.input_tokens + self.output_tokens + self.cache_creation_tokens
            + self.cache_read_tokens,
            bool(self.speed),
            self.timestamp,
            Decimal(0),
            self.line_session_id or None,
        )  # fmt: skip


class CountedKey(NamedTuple):
    """A counted line and its slot: ``counted_usage``'s sorting key."""

    dedup_scope: str
    message_id: str
    source_file: str
    source_generation: int
    source_offset: int
    slot_file: str
    slot_offset: int


class CountedChange(NamedTuple):
    """A line that starts (``sign`` +1) or stops (-1) counting, as written to ``counted_usage``:
    what the live session aggregates and budgets apply (a -1 repeats its +1's values)."""

    sign: int
    dedup_scope: str
    source_file: str
    timestamp_ms: int
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: Decimal  # cost_usd: the line's costUSD, else calculated (``--mode auto``)
    tool_uses: tuple[str, ...] = ()


KEY_COLUMNS = CountedKey._fields
# What reports read of a counted line (the rule's own fields stay in usage_copies).
_VALUES = (
    "timestamp", "model", "speed", "version", "input_tokens", "output_tokens",
    "cache_creation_tokens", "cache_read_tokens", "cost_usd", "has_cost_usd", "cost_calculated",
    "usage_limit_reset_ms", "tool_uses",
)  # fmt: skip
# counted_usage's columns, in the order rows are written.
COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, "sign", *_VALUES)


def decide(copies: Iterable[C], current: Mapping[str, int]) -> dict[CountedKey, C]:
    """The counted lines among ``copies``: every copy of each group to decide, in any order
    (``StoredCopy`` or any ``Decidable``; each counted key maps to one of them).

    ``current`` maps a file to its current generation; copies of other generations do not
    count (a file absent from it counts at any generation). A line seen twice (unmerged
    replacement) is one line.
    """
    lines: dict[tuple[str, int, int], C] = {}
    for row in copies:
        if current.get(row.source_file, row.source_generation) == row.source_generation:
            lines.setdefault((row.source_file, row.source_generation, row.source_offset), row)
    groups: dict[tuple[str, str], list[C]] = {}
    counted: dict[CountedKey, C] = {}
    for row in lines.values():
        if row.message_id:
            groups.setdefault((row.dedup_scope, row.message_id), []).append(row)
        else:
            counted[_key(row, row)] = row
    for rows in groups.values():
        if len(rows) == 1:  # most groups: a lone copy counts, in its own slot
            counted[_key(rows[0], rows[0])] = rows[0]
            continue
        rows.sort(key=lambda r: (r.source_file, r.source_offset))
        pushed = [row.copy() for row in rows]
        request = pushed[0].request_id
        if request is not None and all(c.request_id == request for c in pushed):
            # Most groups: one request id. Every later copy matches the first entry by its
            # (message id, request id) key, whatever its sidechain flag, so the group is one
            # entry in the first copy's slot, won as ``Deduper.push`` would decide it.
            best = 0
            for i in range(1, len(pushed)):
                if should_replace(pushed[i], pushed[best]):
                    best = i
            counted[_key(rows[best], rows[0])] = rows[best]
            continue
        deduper: Deduper[C] = Deduper()
        slots: list[C] = []
        for row, copy in zip(rows, pushed, strict=True):
            if deduper.push(copy, row).outcome is Outcome.COUNTED:
                slots.append(row)
        for winner, first in zip(deduper.kept, slots, strict=True):
            counted[_key(winner, first)] = winner
    return counted


def _key(row: Decidable, slot: Decidable) -> CountedKey:
    return CountedKey(
        row.dedup_scope, row.message_id, row.source_file, row.source_generation,
        row.source_offset, slot.source_file, slot.source_offset,
    )  # fmt: skip


R = TypeVar("R")
V = TypeVar("V")


def changes(
    recorded: Mapping[CountedKey, tuple[int, R]], counted: Mapping[CountedKey, V]
) -> tuple[list[tuple[R, int]], list[tuple[CountedKey, V]]]:
    """What turns ``recorded`` into ``counted``: the recorded rows to write again, each with its
    sign (+1 or -1, once per unit of difference), and the counted keys to write with +1.

    ``recorded`` maps each key with a non-zero ``sum(sign)`` to that sum and a handle on one of
    its rows (the row itself, or where it is); ``counted`` is ``decide``'s answer over the same
    groups (its keys; each value, a copy or where it is, comes back with its fresh key)."""
    rewrites: list[tuple[R, int]] = []
    for key, (total, row) in recorded.items():
        wanted = 1 if key in counted else 0
        rewrites.extend([(row, 1 if wanted > total else -1)] * abs(total - wanted))
    fresh = [(key, copy) for key, copy in counted.items() if key not in recorded]
    return rewrites, fresh


def diff(
    recorded: Mapping[CountedKey, tuple[int, Mapping[str, Any]]],
    counted: Mapping[CountedKey, StoredCopy],
) -> list[dict[str, Any]]:
    """``counted_usage`` rows that turn ``recorded`` into ``counted`` (``changes`` as rows).

    ``recorded``'s rows are mappings with every column of ``COLUMNS`` but ``sign``. Every row
    has a sign of +1 or -1, so the table collapses.
    """
    rewrites, fresh = changes(recorded, counted)
    out = [{**row, "sign": sign} for row, sign in rewrites]
    return out + [row_of(key, copy, 1) for key, copy in fresh]


def row_of(key: CountedKey, copy: StoredCopy, sign: int) -> dict[str, Any]:
    """A ``counted_usage`` row (every column of ``COLUMNS``)."""
    row: dict[str, Any] = dict(zip(KEY_COLUMNS, key, strict=True))
    row["sign"] = sign
    for column in _VALUES:
        row[column] = getattr(copy, column)
    return row
