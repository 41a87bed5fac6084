"""Session aggregates: exact sums of the winners' changes, retractions, and reconciliation."""

from __future__ import annotations

from decimal import Decimal

from ingestor.usage.winners import CountedChange
from ingestor.worker.sessions import SessionAgg, by_session, reconciled

FILE = "/h/.claude/projects/proj/s.jsonl"


def c(
    offset: int,
    *,
    sign: int = 1,
    model: str = "claude-opus-4",
    out: int = 10,
    tools: tuple[str, ...] = (),
    file: str = FILE,
) -> CountedChange:
    return CountedChange(
        sign, "host", file, 1_000 * offset, model, 1, out, 2, 3, Decimal("0.0000001"), tools
    )


def test_apply_sums_exactly_and_retracts() -> None:
    agg = SessionAgg("s", "p")
    agg.apply([c(1, tools=("Bash",)), c(2, model="<synthetic>")])
    agg.apply([c(3, out=30, tools=("Read",)), c(1, sign=-1, tools=("Bash",))])
    t = agg.totals
    assert (t.input_tokens, t.output_tokens, t.messages) == (2, 40, 2)
    assert t.cost == Decimal("0.0000002")
    assert list(agg.models) == ["claude-opus-4"]  # synthetic counts in totals only
    assert agg.models["claude-opus-4"].output_tokens == 30
    assert agg.tool_uses == {"Read": 1}
    assert (agg.first_activity_ms, agg.last_activity_ms) == (1_000, 3_000)
    assert agg.revision == 2


def test_a_model_whose_lines_all_stop_counting_leaves_the_breakdown() -> None:
    agg = SessionAgg("s", "p")
    agg.apply([c(1, model="a"), c(2, model="b")])
    agg.apply([c(1, model="a", sign=-1)])
    assert list(agg.models) == ["b"] and agg.totals.messages == 1


def test_changes_go_to_the_session_of_their_file() -> None:
    agent = "/h/.claude/projects/proj/s/subagents/agent-1.jsonl"
    other = "/h/.claude/projects/other/t.jsonl"
    grouped = by_session([c(1), c(2, file=agent), c(3, file=other)])
    assert {sid: (project, len(changes)) for sid, (project, changes) in grouped.items()} == {
        "s": ("proj", 2),
        "t": ("other", 1),
    }


def test_encode_decode_round_trip() -> None:
    agg = SessionAgg("s", "p")
    agg.apply([c(1, tools=("Bash", "Bash"))])
    again = SessionAgg.decode(agg.encode())
    assert again == agg
    body = again.as_json()
    assert body["totalTokens"] == 1 + 10 + 2 + 3
    assert body["totalCost"] == Decimal("0.0000001")
    assert body["toolUses"] == {"Bash": 2}


def test_a_session_behind_or_ahead_of_clickhouse_is_reconciled() -> None:
    truth = SessionAgg("s", "p", revision=1)  # as session_seeds builds it
    truth.apply([c(1), c(2)])
    behind = SessionAgg("s", "p")  # a change stored, its changelog write lost with a crash
    behind.apply([c(1)])
    ahead = SessionAgg("s", "p")  # a changelog ahead of what ClickHouse holds
    ahead.apply([c(1), c(2), c(3)])
    for current in (behind, ahead, None):
        value = reconciled(current, truth)
        assert value is not None
        assert (value.totals, value.models) == (truth.totals, truth.models)
    value = reconciled(ahead, truth)
    assert value is not None and value.revision > ahead.revision
    agreeing = SessionAgg("s", "p")
    agreeing.apply([c(1), c(2)])
    assert reconciled(agreeing, truth) is None
