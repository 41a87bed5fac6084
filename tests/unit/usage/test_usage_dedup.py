"""ccusage's duplicate rule, including its own test cases (adapter/claude/mod.rs, daily.rs)."""

from __future__ import annotations

from decimal import Decimal

from ingestor.usage.dedup import Copy, Deduper, Outcome


def copy(
    mid: str | None,
    rid: str | None,
    *,
    sc: bool = False,
    total: int = 10,
    speed: bool = False,
    cost: str = "0",
    ts: int = 0,
    sid: str | None = "s",
) -> Copy:
    return Copy(mid, rid, sc, total, speed, ts, Decimal(cost), sid)


def run(copies: list[Copy], *, daily: bool = False) -> list[int]:
    d: Deduper[int] = Deduper(daily=daily)
    for i, c in enumerate(copies):
        d.push(c, i)
    return d.kept


def test_lines_without_message_id_always_count() -> None:
    assert run([copy(None, "r"), copy(None, "r")]) == [0, 1]


def test_exact_copies_keep_the_first_on_a_tie() -> None:
    assert run([copy("m", "r"), copy("m", "r")]) == [0]


def test_larger_total_replaces_in_place() -> None:
    d: Deduper[str] = Deduper()
    d.push(copy("m", "r", total=5), "a")
    d.push(copy("x", "r"), "b")
    push = d.push(copy("m", "r", total=9), "c")
    assert push.outcome is Outcome.REPLACED and push.replaced == "a"
    assert d.kept == ["c", "b"]


def test_speed_breaks_a_tie() -> None:
    assert run([copy("m", "r"), copy("m", "r", speed=True)]) == [1]
    assert run([copy("m", "r", speed=True), copy("m", "r")]) == [0]


def test_keeps_parent_usage_when_sidechain_replays_with_new_request_id() -> None:
    # ccusage: keeps_parent_usage_when_sidechain_replays_message_with_new_request_id
    kept = run(
        [
            copy("msg-parent", "req-parent", total=30),
            copy("msg-parent", "req-sidechain-replay", sc=True, total=50_010),
            copy("msg-sidechain-answer", "req-sidechain-answer", sc=True, total=730),
        ]
    )
    assert kept == [0, 2]


def test_refreshes_indexes_when_parent_replaces_sidechain_replay() -> None:
    # ccusage: refreshes_dedupe_indexes_when_parent_replaces_sidechain_replay
    kept = run(
        [
            copy("msg-parent", "req-sidechain-replay", sc=True, total=50_010),
            copy("msg-parent", "req-parent", total=30),
            copy("msg-parent", "req-parent", total=10),
        ]
    )
    assert kept == [1]


def test_a_replacing_line_is_indexed_under_its_own_key() -> None:
    # The 20.0.11 source's daily copy forgot this; ccusage 20.0.24 (daily included) does not.
    lines = [
        copy("m", "r1", sc=True, total=50),
        copy("m", "r2", total=30),
        copy("m", "r2", total=30),
    ]
    assert run(lines) == [1]
    assert run(lines, daily=True) == [1]


def test_daily_copy_breaks_a_token_tie_by_cost() -> None:
    lines = [copy("m", "r", cost="1"), copy("m", "r", cost="2")]
    assert run(lines) == [0]
    assert run(lines, daily=True) == [1]


def test_two_non_sidechain_request_ids_both_count() -> None:
    assert run([copy("m", "r1"), copy("m", "r2")]) == [0, 1]


def test_sidechain_copies_across_request_ids_compete() -> None:
    assert run([copy("m", "r1", sc=True, total=5), copy("m", "r2", sc=True, total=9)]) == [1]


def test_a_sidechain_copy_matches_only_an_entry_of_the_same_instant() -> None:
    # ccusage 20.0.24 (found by the parity tests): a replay written at another instant counts.
    assert run([copy("m", "r1", ts=1), copy("m", "r2", sc=True, ts=2, total=99)]) == [0, 1]
    assert run([copy("m", "r1", ts=1), copy("m", "r2", sc=True, ts=1, total=99)]) == [0]
    assert run([copy("m", "r1", sc=True, ts=1), copy("m", "r2", ts=2)]) == [0, 1]
    # The daily loader's copy ignores the instant.
    assert run([copy("m", "r1", ts=1), copy("m", "r2", sc=True, ts=2)], daily=True) == [0]


def test_daily_copy_matches_a_line_without_request_id_by_key_only_at_the_same_instant() -> None:
    lines = [copy("m", None, total=5, ts=1), copy("m", None, total=9, ts=2)]
    assert run(lines) == [1]
    assert run(lines, daily=True) == [0, 1]
    assert run([copy("m", None, ts=1), copy("m", None, ts=1)], daily=True) == [0]
    sidechain = [copy("m", None, sc=True, total=5), copy("m", None, sc=True, total=9)]
    assert run(sidechain, daily=True) == [1]


def test_without_request_id_the_line_session_is_the_key() -> None:
    # ccusage 20.0.24: resumed sessions replay lines without requestId under a new sessionId,
    # and each copy counts; without sessionId either, a line is never matched by key.
    assert run([copy("m", None, sid="s1"), copy("m", None, sid="s1", total=20)]) == [1]
    assert run([copy("m", None, sid="s1"), copy("m", None, sid="s2")]) == [0, 1]
    assert run([copy("m", None, sid=None), copy("m", None, sid=None)]) == [0, 1]
    assert run([copy("m", "r", sid="s1"), copy("m", "r", sid="s2")]) == [0]
