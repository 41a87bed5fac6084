"""The dedup rule, one behaviour at a time."""

from __future__ import annotations

from decimal import Decimal

from ingestor.worker.dedup import Contribution, DedupIndex, Outcome


def line(
    offset: int,
    *,
    out: int = 10,
    sidechain: bool = False,
    session: str = "s1",
    file: str = "a.jsonl",
) -> Contribution:
    return Contribution(
        identity=(file, 0, offset),
        session_id=session,
        model="claude-sonnet-4",
        timestamp_ms=1_700_000_000_000,  # one instant: sidechain copies match only then
        input_tokens=5,
        output_tokens=out,
        cache_creation_tokens=0,
        cache_read_tokens=0,
        cost=Decimal("0.01"),
        tool_uses=(),
        is_sidechain=sidechain,
    )


def test_lines_without_message_id_always_count() -> None:
    index = DedupIndex()
    assert index.observe("", "r", line(0)).outcome is Outcome.COUNTED
    assert index.observe("", "r", line(1)).outcome is Outcome.COUNTED
    assert index.observe("", "r", line(0)).outcome is Outcome.DUPLICATE  # the same line again


def test_streaming_copies_keep_the_largest_total() -> None:
    index = DedupIndex()
    first = index.observe("m", "r", line(0, out=1))
    assert first.outcome is Outcome.COUNTED
    final = index.observe("m", "r", line(100, out=50))
    assert final.outcome is Outcome.REPLACED
    assert final.retract is not None and final.retract.identity == ("a.jsonl", 0, 0)
    assert final.add is not None and final.add.output_tokens == 50
    assert index.observe("m", "r", line(200, out=20)).outcome is Outcome.DUPLICATE


def test_equal_totals_keep_the_first_seen() -> None:
    index = DedupIndex()
    index.observe("m", "r", line(0, session="parent"))
    verdict = index.observe("m", "r", line(0, session="child", file="b.jsonl"))
    assert verdict.outcome is Outcome.DUPLICATE


def test_non_sidechain_beats_a_larger_sidechain_copy() -> None:
    index = DedupIndex()
    index.observe("m", "r", line(0, out=99, sidechain=True, session="agent"))
    verdict = index.observe("m", "r", line(1, out=1, session="main"))
    assert verdict.outcome is Outcome.REPLACED
    assert verdict.add is not None and verdict.add.session_id == "main"
    assert verdict.retract is not None and verdict.retract.session_id == "agent"
    # ... and a sidechain copy never takes it back, however large.
    assert index.observe("m", "r", line(2, out=500, sidechain=True)).outcome is Outcome.DUPLICATE


def test_sidechain_reuse_of_a_known_message_id_with_a_new_request_is_a_replay() -> None:
    index = DedupIndex()
    index.observe("m", "r1", line(0))
    assert index.observe("m", "r2", line(1, sidechain=True)).outcome is Outcome.DUPLICATE
    # A non-sidechain line with a new request id is a different key, and counts.
    assert index.observe("m", "r3", line(2)).outcome is Outcome.COUNTED


def test_replaying_the_same_lines_changes_nothing() -> None:
    index = DedupIndex()
    lines = [("m", "r", line(0, out=1)), ("m", "r", line(1, out=9)), ("", "", line(2))]
    for m, r, c in lines:
        index.observe(m, r, c)
    replays = [index.observe(m, r, c).outcome for m, r, c in lines[:2]]
    assert replays == [Outcome.DUPLICATE, Outcome.DUPLICATE]


def test_a_counted_sidechain_line_replayed_after_another_request_stays_counted() -> None:
    index = DedupIndex()
    index.observe("m", "r1", line(0, sidechain=True))
    index.observe("m", "r2", line(1))
    assert index.observe("m", "r1", line(0, sidechain=True)).outcome is Outcome.DUPLICATE


def test_restoring_is_replaying_the_stored_lines_in_order() -> None:
    stored = [("m", "r1", line(0, out=50)), ("m", "r1", line(5, out=10))]
    index = DedupIndex()
    for m, r, c in stored:
        index.observe(m, r, c)
    assert index.observe("m", "r1", line(0, out=50)).outcome is Outcome.DUPLICATE
    assert index.observe("m", "r9", line(6, sidechain=True)).outcome is Outcome.DUPLICATE
    assert len(index) == 1
