"""The rule over columns (``decide_columns``) with ``decide`` for the groups it leaves equals
``decide`` alone: the same lines counted, in the same slots, whatever the copies."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from test_usage_winners import line

from ingestor.usage.winners import StoredCopy, decide
from ingestor.usage.winners_columns import decide_columns

Counted = set[tuple[str, int, str, int]]  # (file, offset, slot file, slot offset)


def _codes(values: Sequence[str]) -> list[int]:
    seen: dict[str, int] = {}
    return [-1 if not v else seen.setdefault(v, len(seen)) for v in values]


def by_columns(copies: Sequence[StoredCopy], current: Mapping[str, int]) -> tuple[Counted, int]:
    """What ``decide_columns`` counts plus what ``decide`` counts of the rows it leaves; and
    how many rows it left."""
    ranks = {f: i for i, f in enumerate(sorted({c.source_file for c in copies}))}
    groups = _codes([f"{c.dedup_scope}\x00{c.message_id}" if c.message_id else "" for c in copies])
    decided = decide_columns(
        np.array(groups, np.int64),
        np.array([ranks[c.source_file] for c in copies], np.int64),
        np.array([c.source_generation for c in copies], np.int64),
        np.array([c.source_offset for c in copies], np.uint64),
        np.array(
            [current.get(c.source_file, c.source_generation) == c.source_generation for c in copies]
        ),  # fmt: skip
        np.array(_codes([c.request_id for c in copies]), np.int64),
        np.array([bool(c.is_sidechain) for c in copies]),
        np.array([c.copy().total for c in copies], np.uint64),
        np.array([bool(c.speed) for c in copies]),
    )
    assert len(decided.winners) == len(decided.slots)
    out = {
        (copies[w].source_file, copies[w].source_offset, copies[s].source_file,
         copies[s].source_offset)
        for w, s in zip(decided.winners.tolist(), decided.slots.tolist(), strict=True)
    }  # fmt: skip
    left = [copies[i] for i in decided.rest.tolist()]
    mine = {(copies[w].dedup_scope, copies[w].message_id) for w in decided.winners.tolist()}
    # Whole groups left, none of them decided here too.
    assert not mine & {(c.dedup_scope, c.message_id) for c in left if c.message_id}
    for k in decide(left, current):
        out.add((k.source_file, k.source_offset, k.slot_file, k.slot_offset))
    return out, len(left)


def by_rows(copies: Sequence[StoredCopy], current: Mapping[str, int]) -> Counted:
    return {
        (k.source_file, k.source_offset, k.slot_file, k.slot_offset)
        for k in decide(copies, current)
    }


def test_a_group_of_one_request_is_won_by_its_first_best_copy_in_its_first_copys_slot() -> None:
    copies = [
        line("b.jsonl", 5, total=30),
        line("a.jsonl", 9, total=10),
        line("a.jsonl", 3, total=10, sc=True),  # first in ccusage's order: the slot
        line("b.jsonl", 1, total=30, speed="fast"),  # ties the other 30, and has speed
        line("c.jsonl", 2, total=99, sc=True),  # a sidechain never beats a main-chain copy
    ]
    got, left = by_columns(copies, {})
    assert got == {("b.jsonl", 1, "a.jsonl", 3)} == by_rows(copies, {})
    assert left == 0


def test_lines_without_message_id_count_alone_and_mixed_requests_are_left_to_decide() -> None:
    copies = [
        line("a.jsonl", 1, mid="", rid=""),
        line("a.jsonl", 2, mid="", rid="r2"),
        line("a.jsonl", 3, mid="m2", rid="r1"),
        line("a.jsonl", 4, mid="m2", rid="r2"),  # two requests: decide's whole rule
        line("a.jsonl", 5, mid="m3", rid=""),  # no request id: keyed by session, decide's
    ]
    got, left = by_columns(copies, {})
    assert got == by_rows(copies, {})
    assert left == 3


def test_a_line_given_twice_is_one_and_stale_generations_never_count() -> None:
    copies = [
        line("a.jsonl", 1, total=5),
        line("a.jsonl", 1, total=5),
        line("b.jsonl", 0, total=50, gen=0),  # b's current generation is 1
        line("b.jsonl", 7, total=6, gen=1),
    ]
    current = {"a.jsonl": 0, "b.jsonl": 1}
    got, _ = by_columns(copies, current)
    assert got == {("b.jsonl", 7, "a.jsonl", 1)} == by_rows(copies, current)


def test_nothing_current_counts_nothing() -> None:
    got, left = by_columns([line("a.jsonl", 1, gen=0)], {"a.jsonl": 2})
    assert got == set() and left == 0


@pytest.mark.parametrize("seed", range(200))
def test_random_copies_count_as_decide_counts(seed: int) -> None:
    rng = random.Random(seed)
    files = [f"p/{name}.jsonl" for name in ("a", "b", "c", "é", "B", "a-1")]
    copies = []
    for _ in range(rng.randint(1, 120)):
        mid = rng.choice(["", "m1", "m2", "m3", "m4", "m5"])
        copies.append(
            line(
                rng.choice(files),
                rng.randint(0, 30),
                mid,
                rng.choice(["r1", "r1", "r1", "r2", ""]),
                gen=rng.randint(0, 1),
                scope=rng.choice(["host", "host", "other"]),
                sc=rng.random() < 0.2,
                total=rng.choice([0, 10, 10, 20, 2**64 - 1]),
                speed=rng.choice(["", "", "fast"]),
                ts=rng.choice([1_000, 2_000]),
                sid=rng.choice(["s1", "s2"]),
            )
        )
    current = {f: rng.randint(0, 1) for f in files if rng.random() < 0.7}
    got, _ = by_columns(copies, current)
    assert got == by_rows(copies, current)
