"""Session aggregates: exact sums, retractions, and the offset guard against re-delivery."""

from __future__ import annotations

from decimal import Decimal

from ingestor.worker.dedup import Contribution
from ingestor.worker.sessions import SessionAgg, reconciled


def c(
    offset: int, *, model: str = "claude-opus-4", out: int = 10, tools: tuple[str, ...] = ()
) -> Contribution:
    return Contribution(
        identity=("f", 0, offset),
        session_id="s",
        model=model,
        timestamp_ms=1_000 * offset,
        input_tokens=1,
        output_tokens=out,
        cache_creation_tokens=2,
        cache_read_tokens=3,
        cost=Decimal("0.0000001"),
        tool_uses=tools,
        is_sidechain=False,
    )


def test_apply_sums_exactly_and_retracts() -> None:
    agg = SessionAgg("s", "p")
    assert agg.apply_envelope(7, [c(1, tools=("Bash",)), c(2, model="<synthetic>")], [])
    assert agg.apply_envelope(8, [c(3, out=30, tools=("Read",))], [c(1, tools=("Bash",))])
    t = agg.totals
    assert (t.input_tokens, t.output_tokens, t.messages) == (2, 40, 2)
    assert t.cost == Decimal("0.0000002")
    assert list(agg.models) == ["claude-opus-4"]  # synthetic counts in totals only
    assert agg.models["claude-opus-4"].output_tokens == 30
    assert agg.tool_uses == {"Read": 1}
    assert (agg.first_activity_ms, agg.last_activity_ms) == (1_000, 3_000)


def test_an_envelope_at_or_below_the_applied_offset_is_skipped() -> None:
    agg = SessionAgg("s", "p")
    assert agg.apply_envelope(5, [c(1)], [])
    assert not agg.apply_envelope(5, [c(1)], [])
    assert not agg.apply_envelope(3, [c(2)], [])
    assert agg.totals.messages == 1


def test_encode_decode_round_trip() -> None:
    agg = SessionAgg("s", "p")
    agg.apply_envelope(1, [c(1, tools=("Bash", "Bash"))], [])
    again = SessionAgg.decode(agg.encode())
    assert again == agg
    body = again.as_json()
    assert body["totalTokens"] == 1 + 10 + 2 + 3
    assert body["totalCost"] == Decimal("0.0000001")


def test_a_session_behind_or_ahead_of_clickhouse_is_reconciled_and_its_guard_reset() -> None:
    truth = SessionAgg("s", "p")
    truth.apply_envelope(7, [c(1), c(2)], [])
    truth.applied_offset, truth.revision = -1, 1  # as session_seeds builds it
    behind = SessionAgg("s", "p")  # a changelog write lost with the broker: one line missing
    behind.apply_envelope(7, [c(1)], [])
    ahead = SessionAgg("s", "p")  # applied, then the insert lost: one line too many
    ahead.apply_envelope(9, [c(1), c(2), c(3)], [])
    for current in (behind, ahead, None):
        value = reconciled(current, truth)
        assert value is not None
        assert (value.totals, value.models, value.applied_offset) == (
            truth.totals,
            truth.models,
            -1,
        )
        # A re-delivered envelope applies again: the index (ClickHouse's) decides what it adds.
        assert value.applies(9)
    assert reconciled(ahead, truth) is not None
    assert reconciled(ahead, truth).revision > ahead.revision  # type: ignore[union-attr]
    agreeing = SessionAgg("s", "p")
    agreeing.apply_envelope(12, [c(1), c(2)], [])
    assert reconciled(agreeing, truth) is None  # already right: its guard is kept
