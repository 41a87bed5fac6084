"""Write-time winners: a group decided from its copies, and the ±1 rows that record it.

The oracle is ccusage's rule run once over every line in ccusage's order (``Deduper``, one per
scope): deciding only the groups each batch touched, and writing the difference, must end with
the same counted lines, placed at the same slots, whatever the batches, replays and generations.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ingestor.usage.dedup import Deduper, Outcome
from ingestor.usage.winners import COLUMNS, CountedKey, StoredCopy, decide, diff


def line(
    file: str,
    offset: int,
    mid: str = "m",
    rid: str = "r",
    *,
    gen: int = 0,
    scope: str = "host",
    sc: bool = False,
    total: int = 10,
    speed: str = "",
    ts: int = 1_000,
    sid: str = "s",
) -> StoredCopy:
    return StoredCopy(
        scope, mid, file, gen, offset, rid, sid, int(sc), speed, ts, "claude-x", "2.0.0",
        total, 0, 0, 0, Decimal("0.5"), 1, Decimal("0.25"), 0,
    )  # fmt: skip


def counted(copies: Iterable[StoredCopy], current: Mapping[str, int] | None = None) -> set[Any]:
    """(file, offset, slot file, slot offset) of each counted line."""
    return {
        (k.source_file, k.source_offset, k.slot_file, k.slot_offset)
        for k in decide(copies, current or {})
    }


class Table:
    """``counted_usage`` in memory: rows appended, read back as ``sum(sign)`` per key."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def recorded(self, keys: Iterable[CountedKey] | None = None) -> dict[CountedKey, Any]:
        sums: Counter[CountedKey] = Counter()
        last: dict[CountedKey, dict[str, Any]] = {}
        for row in self.rows:
            key = CountedKey(*(row[c] for c in CountedKey._fields))
            sums[key] += row["sign"]
            last[key] = {c: v for c, v in row.items() if c != "sign"}
        wanted = set(keys) if keys is not None else set(sums)
        return {k: (s, last[k]) for k, s in sums.items() if s and k in wanted}

    def counted(self) -> set[CountedKey]:
        return set(self.recorded())

    def settle(self, copies: list[StoredCopy], current: Mapping[str, int]) -> int:
        """Decide every group ``copies`` holds; ``copies`` must hold those groups whole."""
        decided = decide(copies, current)
        groups = {
            (c.dedup_scope, c.message_id or f"{c.source_file}@{c.source_offset}") for c in copies
        }
        mine = [
            k
            for k in self.recorded()
            if (k.dedup_scope, k.message_id or f"{k.source_file}@{k.source_offset}") in groups
        ]
        out = diff(self.recorded(mine), decided)
        assert all(set(row) == set(COLUMNS) and row["sign"] in (1, -1) for row in out)
        self.rows += out
        return len(out)


def oracle(copies: list[StoredCopy], current: Mapping[str, int]) -> set[CountedKey]:
    """ccusage's rule over everything, in its order: one Deduper per scope."""
    live = {(c.source_file, c.source_generation, c.source_offset): c for c in copies}
    ordered = sorted(
        (
            c
            for c in live.values()
            if current.get(c.source_file, c.source_generation) == c.source_generation
        ),
        key=lambda c: (c.dedup_scope, c.source_file, c.source_offset),
    )
    out: set[CountedKey] = set()
    by_scope: dict[str, list[StoredCopy]] = {}
    for c in ordered:
        by_scope.setdefault(c.dedup_scope, []).append(c)
    for rows in by_scope.values():
        deduper: Deduper[StoredCopy] = Deduper()
        slots = []
        for c in rows:
            if deduper.push(c.copy(), c).outcome is Outcome.COUNTED:
                slots.append(c)
        for w, s in zip(deduper.kept, slots, strict=True):
            out.add(
                CountedKey(
                    w.dedup_scope, w.message_id, w.source_file, w.source_generation,
                    w.source_offset, s.source_file, s.source_offset,
                )
            )  # fmt: skip
    return out


def test_a_larger_later_copy_replaces_the_winner_and_keeps_its_slot() -> None:
    small, large = line("a", 0, total=5), line("b", 0, total=50)
    assert counted([small]) == {("a", 0, "a", 0)}
    assert counted([large, small]) == {("b", 0, "a", 0)}  # input order does not matter

    table = Table()
    table.settle([small], {})
    assert table.settle([small, large], {}) == 2  # -1 for a, +1 for b
    assert {(k.source_file, k.slot_file) for k in table.counted()} == {("b", "a")}


def test_deciding_again_writes_nothing() -> None:
    copies = [line("a", 0, total=5), line("b", 0, total=50), line("b", 10, mid="")]
    table = Table()
    assert table.settle(copies, {}) == 2
    assert table.settle(copies, {}) == 0
    assert table.settle(copies + copies, {}) == 0  # an unmerged replacement reads twice


def test_a_sidechain_copy_competes_only_at_the_same_instant() -> None:
    main = line("a", 0, rid="r1", ts=1_000)
    replay = line("b", 0, rid="r2", sc=True, ts=1_000, total=99)
    later = line("b", 10, rid="r3", sc=True, ts=2_000)
    # the non-sidechain line wins against the same-instant replay; the later one counts alone
    assert counted([main, replay, later]) == {("a", 0, "a", 0), ("b", 10, "b", 10)}


def test_without_request_id_the_session_id_is_the_key_and_without_both_nothing_is() -> None:
    one, two = line("a", 0, rid="", sid="s1"), line("a", 10, rid="", sid="s1", total=20)
    assert counted([one, two]) == {("a", 10, "a", 0)}
    other = line("a", 20, rid="", sid="s2")
    assert ("a", 20, "a", 20) in counted([one, two, other])
    bare = [line("a", 0, rid="", sid=""), line("a", 10, rid="", sid="")]
    assert counted(bare) == {("a", 0, "a", 0), ("a", 10, "a", 10)}


def test_lines_without_message_id_each_count() -> None:
    assert counted([line("a", 0, mid=""), line("a", 10, mid="")]) == {
        ("a", 0, "a", 0),
        ("a", 10, "a", 10),
    }


def test_a_new_generation_retracts_the_old_one_and_hands_the_group_on() -> None:
    old = line("a", 0, total=50)  # wins over b while a's generation 0 is current
    other = line("b", 0, total=5)
    loose = line("a", 10, mid="")
    table = Table()
    table.settle([old, other, loose], {"a": 0, "b": 0})
    assert {(k.source_file, k.source_offset) for k in table.counted()} == {("a", 0), ("a", 10)}
    # a is replaced by generation 1 (or deleted: an empty tombstone generation)
    table.settle([old, other, loose], {"a": 1, "b": 0})
    assert {(k.source_file, k.source_offset) for k in table.counted()} == {("b", 0)}
    new = line("a", 0, gen=1, total=7)
    table.settle([old, other, loose, new], {"a": 1, "b": 0})
    assert {(k.source_file, k.source_generation) for k in table.counted()} == {("a", 1)}


def test_diff_repairs_any_recorded_sum() -> None:
    key = CountedKey("host", "m", "a", 0, 0, "a", 0)
    row = {c: 0 for c in COLUMNS if c != "sign"}
    assert [r["sign"] for r in diff({key: (2, row)}, {})] == [-1, -1]
    assert [r["sign"] for r in diff({key: (-1, row)}, {key: line("a", 0)})] == [1, 1]


def test_batches_replays_and_generations_end_as_the_rule_over_everything() -> None:
    for seed in range(40):
        rng = random.Random(seed)
        files = [f"/p/projects/x/{name}.jsonl" for name in "abcd"]
        stored: list[StoredCopy] = []
        current: dict[str, int] = {}
        table = Table()
        for _ in range(rng.randint(1, 8)):
            batch = []
            for _ in range(rng.randint(1, 12)):
                file = rng.choice(files)
                if rng.random() < 0.05:  # replaced or deleted: a new, empty generation
                    current[file] = current.get(file, 0) + 1
                gen = current.get(file, 0)
                offset = 10 * sum(1 for c in stored + batch if c.source_file == file)
                batch.append(
                    line(
                        file, offset, rng.choice(["m1", "m2", "m3", ""]),
                        rng.choice(["r1", "r2", ""]), gen=gen, scope=rng.choice(["h1", "h2"]),
                        sc=rng.random() < 0.3, total=rng.choice([5, 10, 20]),
                        speed=rng.choice(["", "fast"]), ts=rng.choice([1_000, 2_000]),
                        sid=rng.choice(["s1", "s2", ""]),
                    )
                )  # fmt: skip
            stored += batch
            for _ in range(rng.choice([1, 1, 2])):  # sometimes the batch is replayed
                # the groups of the batch's lines, and of lines in files with a newer generation
                renewed = {
                    c.source_file
                    for c in stored
                    if c.source_generation < current.get(c.source_file, 0)
                }
                picked = [c for c in stored if c in batch or c.source_file in renewed]
                touched = {(c.dedup_scope, c.message_id) for c in picked if c.message_id}
                loose = {(c.source_file, c.source_generation, c.source_offset) for c in picked}
                copies = [
                    c
                    for c in stored
                    if (c.dedup_scope, c.message_id) in touched
                    or (
                        not c.message_id
                        and (c.source_file, c.source_generation, c.source_offset) in loose
                    )
                ]
                table.settle(copies, current)
        assert table.counted() == oracle(stored, current), seed


def test_groups_of_one_request_id_decide_as_the_rule_does() -> None:
    # decide's short cut for a group whose copies share one request id, against the rule run
    # copy by copy: sidechain flags, totals and speeds mixed, ties included, any input order.
    for seed in range(300):
        rng = random.Random(seed)
        copies = [
            line(
                rng.choice("abc"),
                10 * i,
                rng.choice(["m1", "m2"]),
                rng.choice(["r1"] * 6 + ["r2", ""]),
                sc=rng.random() < 0.4,
                total=rng.choice([5, 10]),
                speed=rng.choice(["", "fast"]),
                ts=rng.choice([1_000, 2_000]),
                sid=rng.choice(["s1", "s2"]),
            )  # fmt: skip
            for i in range(rng.randint(1, 9))
        ]
        rng.shuffle(copies)
        assert set(decide(copies, {})) == oracle(copies, {}), seed
