"""ccusage's duplicate rule, step for step. Pure.

ccusage 20.x (``adapter/claude/mod.rs``: ``push_deduped_entry``, ``should_replace_deduped_entry``)
reads files in path order and lines in file order, and keeps a list of counted entries:

- a line without ``message.id`` is always counted;
- a line whose ``(message.id, requestId)`` matches a counted entry competes with it (without
  ``requestId``, the 20.0.24 binary keys the line by ``(message.id, sessionId)`` instead, and a
  line with neither is never matched by key);
- else, a line whose ``message.id`` *and timestamp* match a counted entry where either of the two
  is a sidechain line competes with the first such entry (``/btw`` sidechain logs replay parent
  messages under new request ids). The timestamp condition is the 20.0.24 binary's (found by
  the parity tests; the 20.0.11 source has none): a sidechain copy written at another instant is
  counted as an entry of its own;
- else it is counted as a new entry.

Competing, the non-sidechain line wins, then the larger token total (input + output + cache
creation + cache read), then the one with a ``speed`` field; on a tie the counted entry stays.
The winner takes the loser's place in the list. Index lists are kept exactly as ccusage keeps its
hash buckets (a request-less line's bucket is its message's), so the rare order-dependent corner
cases come out as ccusage's.

ccusage's daily report runs a copy of this (``adapter/claude/daily.rs``) that differs in three
places (the 20.0.24 binary's, found by the parity tests): a line without ``requestId`` matches
by its key only a line of the same instant, its sidechain match ignores timestamps, and it
breaks a token tie by the larger cost before looking at ``speed``. (The 20.0.11 source's daily
copy also forgot to index a replacing line under its own key; the binary does not.)
``Deduper(daily=True)`` is that copy: the parity tests use it to predict ccusage's daily
numbers; the product uses the common rule for every report (README, "Where ccusage disagrees
with itself").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from enum import Enum
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Copy", "DedupRule", "Deduper", "Outcome", "Push", "should_replace"]


class Copy(NamedTuple):
    """What the rule reads of one usage line (a tuple: one is made per stored usage line)."""

    message_id: str | None
    request_id: str | None
    is_sidechain: bool
    total: int  # input + output + cache creation + cache read
    has_speed: bool
    timestamp_ms: int = 0  # a sidechain copy matches only an entry of the same instant
    cost: Decimal = Decimal(0)  # read by the daily variant only
    session_id: str | None = None  # the line's own sessionId: the key when it has no requestId


class Outcome(Enum):
    COUNTED = "counted"  # a new entry
    REPLACED = "replaced"  # took the place of the entry it beat
    DUPLICATE = "duplicate"  # lost to the entry it competed with


T = TypeVar("T")


class Push(NamedTuple, Generic[T]):
    outcome: Outcome
    slot: int  # the entry's slot (the winner's, for a duplicate)
    replaced: T | None = None  # the entry a REPLACED line pushed out


def should_replace(new: Copy, old: Copy, daily: bool = False) -> bool:
    """Whether ``new`` beats the entry ``old`` it competes with."""
    if new.is_sidechain != old.is_sidechain:
        return old.is_sidechain
    if new.total != old.total:
        return new.total > old.total
    if daily and new.cost != old.cost:
        return new.cost > old.cost
    return new.has_speed and not old.has_speed


class DedupRule(ABC, Generic[T]):
    """The rule over entries pushed in ccusage's order; where a subclass keeps them is its own.

    Slot ``i`` is the ``i``-th counted entry: a winner takes its loser's slot.
    """

    __slots__ = ("_buckets", "_daily")

    def __init__(self, *, daily: bool = False) -> None:
        self._daily = daily
        # The slots a key was indexed under, in indexing order (ccusage's hash buckets). A line
        # without requestId is keyed by its message id alone, which is also the message's bucket,
        # as in ccusage where hash(id, None) is both. One slot is held as an int: most keys have
        # one, and a list a key would cost ~60 bytes an entry.
        self._buckets: dict[str | tuple[str, str], int | list[int]] = {}

    @abstractmethod
    def __len__(self) -> int:
        """The entries counted."""

    @abstractmethod
    def copy_at(self, slot: int) -> Copy:
        """The ``Copy`` kept in ``slot`` (equal to the one pushed)."""

    @abstractmethod
    def item_at(self, slot: int) -> T:
        """The item kept in ``slot``."""

    @abstractmethod
    def _keep(self, slot: int, copy: Copy, item: T) -> None:
        """Keep ``copy`` and ``item`` in ``slot``: ``len(self)`` appends, a smaller one replaces."""

    def push(self, copy: Copy, item: T) -> Push[T]:
        message_id = copy.message_id
        if message_id is None:
            self._keep(len(self), copy, item)
            return Push(Outcome.COUNTED, len(self) - 1)
        request_id = copy.request_id
        key = message_id if request_id is None else (message_id, request_id)
        match = self._find_exact(key, message_id, copy)
        if match is None:
            match = self._find_sidechain(message_id, copy)
        if match is not None:
            found, kept = match
            if not should_replace(copy, kept, self._daily):
                return Push(Outcome.DUPLICATE, found)
            replaced = self.item_at(found)
            self._keep(found, copy, item)
            self._index(key, found)
            self._index(message_id, found)
            return Push(Outcome.REPLACED, found, replaced)
        index = len(self)
        self._keep(index, copy, item)
        self._index(key, index)
        self._index(message_id, index)
        return Push(Outcome.COUNTED, index)

    def _slots(self, key: str | tuple[str, str]) -> tuple[int, ...] | list[int]:
        held = self._buckets.get(key)
        if held is None:
            return ()
        return (held,) if isinstance(held, int) else held

    # The finders answer the slot and the copy kept there (read once: a packed one is built).

    def _find_exact(
        self, key: str | tuple[str, str], message_id: str, copy: Copy
    ) -> tuple[int, Copy] | None:
        # Without requestId the key is the line's sessionId (none: no key); the daily copy also
        # wants the same instant.
        no_request = copy.request_id is None
        if no_request and copy.session_id is None:
            return None
        for index in self._slots(key):
            kept = self.copy_at(index)
            if (
                kept.message_id == message_id
                and kept.request_id == copy.request_id
                and (not no_request or kept.session_id == copy.session_id)
                and (not (no_request and self._daily) or kept.timestamp_ms == copy.timestamp_ms)
            ):
                return index, kept
        return None

    def _find_sidechain(self, message_id: str, copy: Copy) -> tuple[int, Copy] | None:
        for index in self._slots(message_id):
            kept = self.copy_at(index)
            if (
                kept.message_id == message_id
                and (copy.is_sidechain or kept.is_sidechain)
                and (self._daily or kept.timestamp_ms == copy.timestamp_ms)
            ):
                return index, kept
        return None

    def _index(self, key: str | tuple[str, str], index: int) -> None:
        held = self._buckets.get(key)
        if held is None:
            self._buckets[key] = index
        elif isinstance(held, int):
            if held != index:
                self._buckets[key] = [held, index]
        elif index not in held:
            held.append(index)


class Deduper(DedupRule[T]):
    """The rule with its entries in lists: ``kept`` holds what counts, each with its ``Copy``."""

    __slots__ = ("copies", "kept")

    def __init__(self, *, daily: bool = False) -> None:
        super().__init__(daily=daily)
        self.kept: list[T] = []
        self.copies: list[Copy] = []

    def __len__(self) -> int:
        return len(self.kept)

    def copy_at(self, slot: int) -> Copy:
        return self.copies[slot]

    def item_at(self, slot: int) -> T:
        return self.kept[slot]

    def _keep(self, slot: int, copy: Copy, item: T) -> None:
        if slot == len(self.kept):
            self.kept.append(item)
            self.copies.append(copy)
        else:
            self.kept[slot] = item
            self.copies[slot] = copy
