"""The packed dedup entries give back what went in, and decide as the list-kept rule does."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from ingestor.usage.dedup import Deduper, Outcome, Push
from ingestor.worker import packed as packed_module
from ingestor.worker.dedup import DedupIndex, Verdict
from ingestor.worker.dedup import Outcome as Verdicted
from ingestor.worker.packed import (
    Contribution,
    Interned,
    LineSet,
    PackedRule,
    copy_of,
    pack_cost,
    unpack_cost,
)


def line(
    offset: int,
    *,
    file: str = "a.jsonl",
    generation: int = 0,
    session: str = "s1",
    out: int = 10,
    cost: str = "0.0123",
    sidechain: bool = False,
    speed: bool = False,
    ts: int = 1_700_000_000_000,
    tools: tuple[str, ...] = (),
    line_session: str = "",
) -> Contribution:
    return Contribution(
        identity=(file, generation, offset),
        session_id=session,
        model="claude-sonnet-4",
        timestamp_ms=ts,
        input_tokens=5,
        output_tokens=out,
        cache_creation_tokens=7,
        cache_read_tokens=11,
        cost=Decimal(cost),
        tool_uses=tools,
        is_sidechain=sidechain,
        has_speed=speed,
        line_session_id=line_session,
    )


@pytest.mark.parametrize(
    "text",
    ["0", "0E-10", "0.0123", "1.50", "-3.25", "1E+2", "12.3456789012", "9223372036854775807E-10"],
)
def test_a_cost_unpacks_to_the_same_decimal_with_its_exponent(text: str) -> None:
    cost = Decimal(text)
    assert unpack_cost(*pack_cost(cost)).as_tuple() == cost.as_tuple()


def test_a_cost_past_the_context_precision_still_packs_exactly() -> None:
    cost = Decimal("1234567890123456789012345678901234567890.0123456789")
    assert unpack_cost(*pack_cost(cost)).as_tuple() == cost.as_tuple()


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-0", "-0.00"])
def test_a_cost_without_coefficient_and_exponent_does_not_pack(text: str) -> None:
    with pytest.raises(ValueError):
        pack_cost(Decimal(text))


def test_interned_values_are_held_once_in_order_of_first_sight() -> None:
    names: Interned[str] = Interned()
    assert [names.id(v) for v in ("b", "a", "b", "c", "a")] == [0, 1, 0, 2, 1]
    assert names.values == ["b", "a", "c"]


@pytest.mark.parametrize(
    "kept",
    [
        line(0),
        line(3, session="other", sidechain=True, speed=True, tools=("Bash", "Read")),
        line(9, line_session="s9", ts=-5, cost="1E+2"),
        line(2**63, out=2**64 - 1, cost="-0"),  # past 64 signed bits: kept whole
        line(1, cost="NaN"),
    ],
)
def test_a_slot_gives_back_the_line_and_copy_pushed(kept: Contribution) -> None:
    rule = PackedRule()
    copy = copy_of("m", "r", kept)
    rule.push(copy, kept)
    assert rule.item_at(0) == kept or kept.cost.is_nan()
    assert rule.item_at(0).cost.as_tuple() == kept.cost.as_tuple()
    assert rule.copy_at(0) == copy


def test_a_winner_takes_the_slot_whole() -> None:
    rule = PackedRule()
    rule.push(copy_of("m", "r", first := line(2**63, out=1)), first)  # kept whole
    push = rule.push(copy_of("m", "r", final := line(8, out=50, speed=True)), final)
    assert push.replaced == first
    assert len(rule) == 1
    assert rule.item_at(0) == final and rule.copy_at(0) == copy_of("m", "r", final)


def _random_lines(rng: random.Random, n: int) -> list[tuple[str, str, Contribution]]:
    """Few ids and instants, so that keys, sidechain matches and ties collide often."""
    out = []
    for offset in range(n):
        c = line(
            offset,
            file=rng.choice(("a", "b")),
            session=rng.choice(("s1", "s2")),
            out=rng.randrange(4),
            sidechain=rng.random() < 0.3,
            speed=rng.random() < 0.2,
            ts=rng.randrange(3),
            cost=rng.choice(("0.1", "0.10", "2", "-0.5")),
            line_session=rng.choice(("", "s1", "s2")),
        )
        out.append((rng.choice(("", "m1", "m2", "m3")), rng.choice(("", "r1", "r2")), c))
    return out


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("count_new", [False, True])
@pytest.mark.parametrize("hot", [0, 2, 256])
def test_packed_and_listed_entries_decide_the_same(
    seed: int, count_new: bool, hot: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packed_module, "_HOT_SLOTS", hot)  # winners packed at once, soon, late
    packed, listed = PackedRule(), Deduper[Contribution]()
    for m, r, c in _random_lines(random.Random(seed), 300):
        copy = copy_of(m, r, c)
        if count_new and packed.count_new(m, r, c):  # the worker's path: push when it declines
            assert listed.push(copy, c) == Push(Outcome.COUNTED, len(packed) - 1)
        else:
            assert packed.push(copy, c) == listed.push(copy, c)
    assert [packed.item_at(i) for i in range(len(packed))] == listed.kept
    assert [packed.copy_at(i) for i in range(len(packed))] == listed.copies


class _ListedIndex:
    """``DedupIndex`` as it was before packing: the list-kept rule and a set of identities."""

    def __init__(self) -> None:
        self.rule: Deduper[Contribution] = Deduper()
        self.counted: set[tuple[str, int, int]] = set()

    def observe(self, message_id: str, request_id: str, line: Contribution) -> Verdict:
        if line.identity in self.counted:
            return Verdict(Verdicted.DUPLICATE)
        push = self.rule.push(copy_of(message_id, request_id, line), line)
        if push.outcome is Outcome.DUPLICATE:
            return Verdict(Verdicted.DUPLICATE)
        self.counted.add(line.identity)
        if push.replaced is None:
            return Verdict(Verdicted.COUNTED, add=line)
        self.counted.discard(push.replaced.identity)
        return Verdict(Verdicted.REPLACED, add=line, retract=push.replaced)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("hot", [0, 3, 256])
def test_the_index_decides_as_the_list_kept_one(
    seed: int, hot: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines mostly appended, some replayed or out of order, offsets of all kinds: the fast
    paths (``LineSet.run``, ``count_new``, winners held whole) give the verdicts of the plain
    rule and set."""
    monkeypatch.setattr(packed_module, "_HOT_SLOTS", hot)
    rng = random.Random(seed)
    index, listed = DedupIndex(), _ListedIndex()
    ends = {("a", 0): 0, ("a", 1): 0, ("b", 0): 0}
    seen: list[tuple[str, str, Contribution]] = []
    for _ in range(600):
        if seen and rng.random() < 0.15:
            m, r, c = rng.choice(seen)  # a replay, maybe of a line that lost its slot since
        else:
            file, generation = rng.choice(list(ends))
            if rng.random() < 0.8:
                ends[file, generation] += rng.randrange(1, 4)
                offset = ends[file, generation]  # appended
            else:
                offset = rng.choice((rng.randrange(ends[file, generation] + 1), 2**64 + 1, -1))
            c = line(
                offset,
                file=file,
                generation=generation,
                session=rng.choice(("s1", "s2")),
                out=rng.randrange(4),
                sidechain=rng.random() < 0.2,
                speed=rng.random() < 0.1,
                ts=rng.randrange(3),
                cost=rng.choice(("0.1", "0.10", "2", "1E+2", "0.0000001", "-0.5", "NaN", "0")),
                tools=rng.choice(((), ("Bash",))),
                line_session=rng.choice(("", "s1", "s2")),
            )
            m = rng.choice(("", "m1", "m2", f"m{rng.randrange(10**6)}"))
            r = rng.choice(("", "r1", f"r{rng.randrange(10**6)}"))
            seen.append((m, r, c))
        assert index.observe(m, r, c) == listed.observe(m, r, c)
    assert len(index) == len(listed.rule.kept)


@pytest.mark.parametrize("seed", range(10))
def test_a_line_set_is_a_set(seed: int) -> None:
    rng = random.Random(seed)
    lines, model = LineSet(), set()
    for _ in range(2000):
        identity = (rng.choice(("a", "b")), rng.randrange(2), rng.randrange(60))
        if rng.random() < 0.05:
            identity = (identity[0], identity[1], 2**64 + identity[2])  # past the array's range
        assert (identity in lines) == (identity in model)
        if rng.random() < 0.7:
            lines.add(identity)
            model.add(identity)
        else:
            lines.discard(identity)
            model.discard(identity)
