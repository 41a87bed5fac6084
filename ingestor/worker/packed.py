"""A counted usage line (``Contribution``) and the packed form the dedup index keeps it in. Pure.

The worker's index holds every counted usage line of a scope's history (~550k at 1M transcript
lines). Kept as objects (a ``Contribution``, its ``Copy``, a ``Decimal``, an identity tuple and
a fresh string a field) one cost ~1.7 kB; packed, ~0.45 kB: ~110 bytes of typed arrays (repeated
strings, i.e. sessions, models, files and tool lists, interned; the cost as its ``Decimal``'s
integer coefficient and exponent), the rest its message and request id strings and the rule's
buckets, which a keyed lookup needs (``python -m bench.index_memory``). Unpacking gives back
equal values (the cost with its exponent, so sums print as before). A line whose numbers do not
fit (past 64 bits, a non-finite or negative-zero cost) is kept whole instead.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Hashable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Generic, NamedTuple, TypeVar

from ingestor.usage.dedup import Copy, DedupRule

__all__ = ["Contribution", "Interned", "LineSet", "PackedRule", "copy_of", "pack_cost"]

K = TypeVar("K", bound=Hashable)

_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # scaleb without rounding


class Contribution(NamedTuple):
    """What one counted usage line adds to its session's aggregates.

    A NamedTuple, not a frozen dataclass: one is built per usage line (and per retracted copy),
    and a frozen dataclass's ``__init__`` (``object.__setattr__`` a field) cost ~10x the time.
    """

    identity: tuple[str, int, int]  # (source_file, generation, offset): the line itself
    session_id: str
    model: str
    timestamp_ms: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: Decimal
    tool_uses: tuple[str, ...]
    is_sidechain: bool
    has_speed: bool = False
    line_session_id: str = ""  # the line's own sessionId (the dedup key without requestId)

    @property
    def dedup_total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )


def copy_of(message_id: str, request_id: str, line: Contribution) -> Copy:
    """What the rule reads of ``line`` ('' ids: none). ``PackedRule`` keeps only such copies."""
    return Copy(
        message_id=message_id or None,
        request_id=request_id or None,
        is_sidechain=line.is_sidechain,
        total=line.dedup_total,
        has_speed=line.has_speed,
        timestamp_ms=line.timestamp_ms,
        session_id=line.line_session_id or None,
    )


def pack_cost(cost: Decimal) -> tuple[int, int]:
    """(coefficient, exponent) with ``unpack_cost`` giving ``cost`` back, sign and exponent
    included. Raises ValueError for a cost that has no such pair (NaN, infinity, -0)."""
    if not cost.is_finite():
        raise ValueError(f"cost {cost!r} does not pack")
    text = str(cost)
    if "E" in text:
        exponent = cost.as_tuple().exponent
        assert type(exponent) is int  # a finite Decimal's
        coefficient = int(cost.scaleb(-exponent, _EXACT))
    else:
        # Plain notation (every cost a price table gives): its digits are the coefficient, those
        # after the point the exponent. ~0.3 µs where as_tuple and scaleb take ~1 µs a line.
        point = text.find(".")
        if point < 0:
            coefficient, exponent = int(text), 0
        else:
            coefficient, exponent = int(text[:point] + text[point + 1 :]), point + 1 - len(text)
    if not coefficient and cost.is_signed():
        raise ValueError(f"cost {cost!r} does not pack")
    return coefficient, exponent


def unpack_cost(coefficient: int, exponent: int) -> Decimal:
    return Decimal(f"{coefficient}E{exponent}")  # a string converts exactly, whatever the context


class Interned(Generic[K]):
    """Values numbered in order of first sight, each held once."""

    __slots__ = ("known", "values")

    def __init__(self) -> None:
        self.known: dict[K, int] = {}  # value -> its id
        self.values: list[K] = []

    def id(self, value: K) -> int:
        found = self.known.get(value)
        if found is None:
            found = self.known[value] = len(self.values)
            self.values.append(value)
        return found


# Columns a slot: ids into the interned tables; 64-bit numbers; two small ones.
_SESSION, _MODEL, _FILE, _TOOLS, _LINE_SESSION = range(5)
_GENERATION, _OFFSET, _TIMESTAMP, _INPUT, _OUTPUT, _CREATION, _READ, _COST = range(8)
_EXPONENT, _FLAGS = range(2)
_SIDECHAIN, _SPEED = 1, 2
_NO_COST = Copy(None, None, False, 0, False).cost  # ``copy_of``'s: only the daily rule reads it
# A slot's columns as bytes in native order, as the arrays hold them ("=": no padding).
_IDS, _NUMS, _SMALL = struct.Struct("=5I"), struct.Struct("=8q"), struct.Struct("=2b")
_ZEROS_NUMS, _ZEROS_SMALL = bytes(_NUMS.size), bytes(_SMALL.size)  # a slot kept whole
_HOT_SLOTS = 256  # winners held whole before they are packed: a few envelopes' streamed messages


class PackedRule(DedupRule[Contribution]):
    """The rule with each slot's ``Contribution`` and ``Copy`` (``copy_of`` it) packed in columns.

    ``item_at`` builds an equal ``Contribution`` anew: the index reads one only to retract it.

    A winner that takes an existing slot is held whole for a while (``_hot``, at most
    ``_HOT_SLOTS``), then packed: a streamed message's copies arrive one after the other, each
    beating the one before, and each would otherwise unpack the slot's copy and line and pack
    its own (measured: most of a replacing line's time in the index).
    """

    __slots__ = (
        *("_hot", "_ids", "_messages", "_names", "_nums", "_odd", "_requests", "_small"),
        "_tools",
    )

    def __init__(self) -> None:
        super().__init__()
        self._names: Interned[str] = Interned()
        self._tools: Interned[tuple[str, ...]] = Interned()
        # The key strings stay objects: the rule's buckets hold the same ones.
        self._messages: list[str | None] = []
        self._requests: list[str | None] = []
        self._ids = array("I")
        self._nums = array("q")
        self._small = array("b")
        self._odd: dict[int, tuple[Copy, Contribution]] = {}  # slots whose numbers do not pack
        self._hot: dict[int, tuple[Copy, Contribution]] = {}  # winners not packed yet

    def __len__(self) -> int:
        return len(self._messages)

    def copy_at(self, slot: int) -> Copy:
        if self._hot and slot in self._hot:
            return self._hot[slot][0]
        if self._odd and slot in self._odd:
            return self._odd[slot][0]
        n = self._nums
        i = slot * 8
        flags = self._small[slot * 2 + _FLAGS]
        return Copy(
            self._messages[slot],
            self._requests[slot],
            bool(flags & _SIDECHAIN),
            n[i + _INPUT] + n[i + _OUTPUT] + n[i + _CREATION] + n[i + _READ],
            bool(flags & _SPEED),
            n[i + _TIMESTAMP],
            _NO_COST,
            self._names.values[self._ids[slot * 5 + _LINE_SESSION]] or None,
        )

    def item_at(self, slot: int) -> Contribution:
        if self._hot and slot in self._hot:
            return self._hot[slot][1]
        if self._odd and slot in self._odd:
            return self._odd[slot][1]
        names, ids, n = self._names.values, self._ids, self._nums
        i, j = slot * 8, slot * 5
        flags = self._small[slot * 2 + _FLAGS]
        return Contribution(
            identity=(names[ids[j + _FILE]], n[i + _GENERATION], n[i + _OFFSET]),
            session_id=names[ids[j + _SESSION]],
            model=names[ids[j + _MODEL]],
            timestamp_ms=n[i + _TIMESTAMP],
            input_tokens=n[i + _INPUT],
            output_tokens=n[i + _OUTPUT],
            cache_creation_tokens=n[i + _CREATION],
            cache_read_tokens=n[i + _READ],
            cost=unpack_cost(n[i + _COST], self._small[slot * 2 + _EXPONENT]),
            tool_uses=self._tools.values[ids[j + _TOOLS]],
            is_sidechain=bool(flags & _SIDECHAIN),
            has_speed=bool(flags & _SPEED),
            line_session_id=names[ids[j + _LINE_SESSION]],
        )

    def count_new(self, message_id: str, request_id: str, item: Contribution) -> bool:
        """Count ``item`` in a new slot if ``push(copy_of(message_id, request_id, item), item)``
        would without comparing anything: a line without message id, or the first of its message
        id (a key with a request id is only ever indexed beside its message id's, so no bucket
        can hold a match). Else keep nothing and answer False: the caller pushes it.

        Nearly every line takes this path, live and in ``load_index``: no Copy, no Push, no
        comparison."""
        buckets = self._buckets
        if message_id and message_id in buckets:
            return False
        self._append(message_id or None, request_id or None, item, None)
        if message_id:
            slot = len(self._messages) - 1
            buckets[message_id] = slot
            if request_id:
                buckets[(message_id, request_id)] = slot
        return True

    def _keep(self, slot: int, copy: Copy, item: Contribution) -> None:
        if slot == len(self._messages):
            self._append(copy.message_id, copy.request_id, item, copy)
            return
        # A winner takes the slot of the copy it beat (a streamed message's later copies).
        # A winner has the loser's message id (and often its request id): keep the one object.
        if self._messages[slot] != copy.message_id:
            self._messages[slot] = copy.message_id
        if self._requests[slot] != copy.request_id:
            self._requests[slot] = copy.request_id
        hot = self._hot
        hot[slot] = (copy, item)
        if len(hot) > _HOT_SLOTS:
            for held, (held_copy, held_item) in hot.items():
                self._pack_at(held, held_copy, held_item)
            hot.clear()

    def _pack_at(self, slot: int, copy: Copy, item: Contribution) -> None:
        ids, nums, small = self._columns(item)
        if nums is _ZEROS_NUMS:
            self._odd[slot] = (copy, item)
        elif self._odd:
            self._odd.pop(slot, None)
        self._ids[slot * 5 : slot * 5 + 5] = array("I", ids)
        self._nums[slot * 8 : slot * 8 + 8] = array("q", nums)
        self._small[slot * 2 : slot * 2 + 2] = array("b", small)

    def _append(
        self, message_id: str | None, request_id: str | None, item: Contribution, copy: Copy | None
    ) -> None:
        ids, nums, small = self._columns(item)
        if nums is _ZEROS_NUMS:
            self._odd[len(self._messages)] = (
                copy or copy_of(message_id or "", request_id or "", item),
                item,
            )
        self._messages.append(message_id)
        self._requests.append(request_id)
        # Bytes packed whole: extending an array by a tuple converts and appends item by item,
        # ~3x slower.
        self._ids.frombytes(ids)
        self._nums.frombytes(nums)
        self._small.frombytes(small)

    def _columns(self, item: Contribution) -> tuple[bytes, bytes, bytes]:
        """The slot's ids, numbers and small numbers as the arrays hold them; the numbers are
        ``_ZEROS_NUMS`` (and the small ones zeros) when they do not pack."""
        file, generation, offset = item.identity
        session, line_session = item.session_id, item.line_session_id
        known = self._names.known
        session_at, model_at, file_at = known.get(session), known.get(item.model), known.get(file)
        tools_at = self._tools.known.get(item.tool_uses)
        # Most lines have their session's sessionId: one lookup (and no hash of that string).
        line_at = session_at if line_session == session else known.get(line_session)
        ids = (session_at, model_at, file_at, tools_at, line_at)
        if (
            session_at is None
            or model_at is None
            or file_at is None
            or tools_at is None
            or line_at is None
        ):  # a value seen for the first time (no `None in ids`: ~5x the compares)
            ids = self._intern(item)
        try:
            coefficient, exponent = pack_cost(item.cost)
            nums = _NUMS.pack(
                generation,
                offset,
                item.timestamp_ms,
                item.input_tokens,
                item.output_tokens,
                item.cache_creation_tokens,
                item.cache_read_tokens,
                coefficient,
            )
            flags = (_SIDECHAIN if item.is_sidechain else 0) | (_SPEED if item.has_speed else 0)
            small = _SMALL.pack(exponent, flags)
        except (struct.error, OverflowError, TypeError, ValueError):
            nums, small = _ZEROS_NUMS, _ZEROS_SMALL
        return _IDS.pack(*ids), nums, small

    def _intern(self, item: Contribution) -> tuple[int, int, int, int, int]:
        name = self._names.id
        return (
            name(item.session_id),
            name(item.model),
            name(item.identity[0]),
            self._tools.id(item.tool_uses),
            name(item.line_session_id),
        )


class LineSet:
    """Line identities (file, generation, offset) as sorted offsets per file generation: 8 bytes
    a line instead of a tuple and a set slot. Lines mostly arrive in file order (appends), in
    runs from one file generation (an envelope): the last one looked up is held aside."""

    __slots__ = ("_file", "_generation", "_last", "_odd", "_offsets")

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, int], array[int]] = {}
        self._odd: set[tuple[str, int, int]] = set()  # offsets past 64 bits
        self._file = ""  # the file generation last looked up, and its offsets
        self._generation = 0
        self._last: array[int] | None = None

    def run(self, file: str, generation: int) -> array[int]:
        """The sorted offsets (below 2**64) of ``file``'s ``generation``: a line past the last
        is not in the set, and the caller may append it."""
        if generation == self._generation and file == self._file and self._last is not None:
            return self._last
        offsets = self._offsets.get((file, generation))
        if offsets is None:
            offsets = self._offsets[(file, generation)] = array("Q")
        self._file, self._generation, self._last = file, generation, offsets
        return offsets

    def __contains__(self, identity: tuple[str, int, int]) -> bool:
        file, generation, offset = identity
        offsets = self._offsets.get((file, generation))
        if offsets is None or not 0 <= offset < 2**64:
            return identity in self._odd
        at = bisect_left(offsets, offset)
        return at < len(offsets) and offsets[at] == offset

    def add(self, identity: tuple[str, int, int]) -> None:
        file, generation, offset = identity
        if not 0 <= offset < 2**64:
            self._odd.add(identity)
            return
        offsets = self.run(file, generation)
        if not offsets or offsets[-1] < offset:
            offsets.append(offset)
            return
        at = bisect_left(offsets, offset)
        if offsets[at] != offset:
            offsets.insert(at, offset)

    def discard(self, identity: tuple[str, int, int]) -> None:
        file, generation, offset = identity
        offsets = self._offsets.get((file, generation))
        if offsets is None or not 0 <= offset < 2**64:
            self._odd.discard(identity)
            return
        at = bisect_left(offsets, offset)
        if at < len(offsets) and offsets[at] == offset:
            del offsets[at]
