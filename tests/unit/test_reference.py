"""The oracle itself, on small hand-written trees whose answers are known."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from ingestor.corpus.reference import Reference, _ordered_files
from ingestor.models import Usage


def fake_price(model: str | None, usage: Usage) -> Decimal:
    return Decimal("0.001") * (usage.input_tokens + usage.output_tokens)


def write(root: Path, rel: str, lines: list[Any]) -> Path:
    path = root / "projects" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = [x if isinstance(x, bytes) else orjson.dumps(x) for x in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def line(
    msg_id: str | None,
    req: str | None,
    ts: str = "2025-09-01T10:00:00.000Z",
    inp: int = 10,
    out: int = 5,
    *,
    sidechain: bool = False,
    session: str | None = "s1",
    model: str = "claude-sonnet-4-20250514",
    **usage_extra: Any,
) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": inp, "output_tokens": out, **usage_extra}
    message: dict[str, Any] = {"model": model, "usage": usage, "content": [{"type": "text"}]}
    if msg_id is not None:
        message["id"] = msg_id
    obj: dict[str, Any] = {"type": "assistant", "timestamp": ts, "isSidechain": sidechain}
    obj["message"] = message
    if req is not None:
        obj["requestId"] = req
    if session is not None:
        obj["sessionId"] = session
    return obj


def load(root: Path) -> Reference:
    return Reference.load(root, price=fake_price)


def test_streaming_copies_count_once_with_the_largest(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p/s1.jsonl",
        [line("m1", "r1", out=1), line("m1", "r1", out=40), line("m1", "r1", out=7)],
    )
    ref = load(tmp_path)
    assert [e.output_tokens for e in ref.entries] == [40]
    assert (ref.accounting.usage_lines, ref.accounting.counted, ref.accounting.duplicates) == (
        3,
        1,
        2,
    )


def test_equal_copies_keep_the_first_in_order(tmp_path: Path) -> None:
    first = line("m1", "r1", cache_read_input_tokens=1)
    write(tmp_path, "p/s1.jsonl", [first, first, line("m1", "r1", cache_read_input_tokens=2)])
    assert [e.cache_read_tokens for e in load(tmp_path).entries] == [1]


def test_non_sidechain_copy_wins_even_when_smaller(tmp_path: Path) -> None:
    write(tmp_path, "p/s1.jsonl", [line("m1", "r1", out=10)])
    write(
        tmp_path,
        "p/s1/subagents/agent-a.jsonl",
        [line("m1", "r1", "2025-09-01T11:00:00Z", out=99, sidechain=True)],
    )
    assert [e.output_tokens for e in load(tmp_path).entries] == [10]


def test_non_sidechain_copy_replaces_an_earlier_sidechain_one(tmp_path: Path) -> None:
    write(tmp_path, "p/a.jsonl", [line("m1", "r1", "2025-09-01T09:00:00Z", out=99, sidechain=True)])
    write(tmp_path, "p/b.jsonl", [line("m1", "r1", "2025-09-01T10:00:00Z", out=10, session="b")])
    entries = load(tmp_path).entries
    assert [(e.output_tokens, e.session, e.is_sidechain) for e in entries] == [(10, "b", False)]


def test_sidechain_reusing_a_known_message_id_with_a_new_request_is_dropped(tmp_path: Path) -> None:
    write(tmp_path, "p/s1.jsonl", [line("m1", "r1", out=5)])
    write(
        tmp_path,
        "p/s1/subagents/agent-a.jsonl",
        [line("m1", "r2", "2025-09-01T11:00:00Z", out=50, sidechain=True)],
    )
    ref = load(tmp_path)
    assert [e.output_tokens for e in ref.entries] == [5]
    assert ref.accounting.duplicates == 1


def test_non_sidechain_line_with_a_new_request_id_counts(tmp_path: Path) -> None:
    write(tmp_path, "p/s1.jsonl", [line("m1", "r1", out=5), line("m1", "r2", out=6)])
    assert sorted(e.output_tokens for e in load(tmp_path).entries) == [5, 6]


def test_a_dropped_replay_still_counts_as_seen(tmp_path: Path) -> None:
    # sidechain (m1, r1) counts first; (m1, r2) is a replay; then a larger sidechain (m1, r1)
    # is a replay too, because r2 was seen with m1 — so the first copy stays.
    write(
        tmp_path,
        "p/s1/subagents/agent-a.jsonl",
        [
            line("m1", "r1", out=5, sidechain=True),
            line("m1", "r2", out=6, sidechain=True),
            line("m1", "r1", out=70, sidechain=True),
        ],
    )
    assert [e.output_tokens for e in load(tmp_path).entries] == [5]


def test_replay_detection_follows_file_order(tmp_path: Path) -> None:
    # The sidechain file's earliest line is earlier: its line comes first and is no replay.
    write(
        tmp_path,
        "p/z/subagents/agent-a.jsonl",
        [line("m1", "r2", "2025-09-01T08:00:00Z", sidechain=True)],
    )
    write(tmp_path, "p/a.jsonl", [line("m1", "r1", "2025-09-01T09:00:00Z")])
    assert len(load(tmp_path).entries) == 2


def test_lines_without_message_id_always_count(tmp_path: Path) -> None:
    write(tmp_path, "p/s1.jsonl", [line(None, "r1"), line(None, "r1"), line(None, None)])
    assert load(tmp_path).accounting.counted == 3


def test_missing_request_id_is_its_own_key(tmp_path: Path) -> None:
    write(
        tmp_path, "p/s1.jsonl", [line("m1", None, out=1), line("m1", None, out=3), line("m1", "r1")]
    )
    assert sorted(e.output_tokens for e in load(tmp_path).entries) == [3, 5]


def test_files_are_read_by_earliest_timestamp_then_path(tmp_path: Path) -> None:
    early = {"type": "user", "timestamp": "2025-09-01T01:00:00Z"}
    summary = {"type": "summary", "summary": "no timestamp"}
    late = write(tmp_path, "p/a.jsonl", [line("m1", "r1", "2025-09-01T05:00:00Z", session="a")])
    # The earliest line need not be the first one.
    first = write(
        tmp_path, "p/b.jsonl", [line("m1", "r1", "2025-09-01T06:00:00Z", session="b"), early]
    )
    tie = write(tmp_path, "p/c.jsonl", [early])
    none = write(tmp_path, "p/0.jsonl", [summary])
    assert _ordered_files(tmp_path / "projects") == [first, tie, late, none]
    assert [e.session for e in load(tmp_path).entries] == ["b"]  # equal copies: b came first


def test_cache_creation_prefers_a_non_zero_split(tmp_path: Path) -> None:
    split = {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 4}
    zero = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    rows = [
        line("m1", "r1", cache_creation_input_tokens=100, cache_creation=split),
        line("m2", "r2", cache_creation_input_tokens=100, cache_creation=zero),
        line("m3", "r3", cache_creation_input_tokens=100),
        line("m4", "r4"),
    ]
    write(tmp_path, "p/s1.jsonl", rows)
    assert [e.cache_creation_tokens for e in load(tmp_path).entries] == [7, 100, 100, 0]


def test_cost_usd_wins_over_computed_cost(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p/s1.jsonl",
        [{**line("m1", "r1"), "costUSD": 0.1}, line("m2", "r2", inp=1000, out=0)],
    )
    ref = load(tmp_path)
    assert [e.cost for e in ref.entries] == [Decimal("0.1"), Decimal("1.000")]
    assert ref.totals().cost == Decimal("1.1")


def test_default_pricing_is_the_products(tmp_path: Path) -> None:
    from ingestor.pricing import line_cost

    obj = line("m1", "r1", inp=1000, out=2000, model="claude-sonnet-4-20250514")
    write(tmp_path, "p/s1.jsonl", [obj])
    expected = line_cost("claude-sonnet-4-20250514", Usage.model_validate(obj["message"]["usage"]))
    assert expected > 0
    assert Reference.load(tmp_path).totals().cost == expected


def test_invalid_lines_are_accounted_not_counted(tmp_path: Path) -> None:
    no_ts = line("m6", "r6")
    del no_ts["timestamp"]
    bad = [
        b"{not json",
        b'{"type": "assistant", "message": {"usage": {"input_tok',
        b"[1, 2]",
        line("m4", "r4", inp=-1),
        line("m5", "r5", out="5"),  # type: ignore[arg-type]
        no_ts,
        {**line("m7", "r7"), "costUSD": -0.5},
        {"message": {}},  # no type
    ]
    good = [{"type": "summary", "summary": "s"}, line("m1", "r1")]
    path = write(tmp_path, "p/s1.jsonl", good + bad)
    path.write_bytes(path.read_bytes() + b"\n  \n")  # blank lines are not lines
    acc = load(tmp_path).accounting
    assert (acc.lines, acc.valid, acc.invalid, acc.usage_lines, acc.counted) == (10, 2, 8, 1, 1)


def test_reports_group_winners(tmp_path: Path) -> None:
    rows = [
        line("m1", "r1", "2025-09-01T23:30:00Z", inp=1, out=1),
        line("m1", "r1", "2025-09-02T00:10:00Z", inp=1, out=2),  # the winner decides the day
        line("m2", "r2", "2025-09-30T23:00:00Z", inp=1, out=3, model="claude-opus-4-20250514"),
        line("m3", None, "2025-10-01T00:00:00Z", inp=5, out=0, model="<synthetic>", session=None),
    ]
    write(tmp_path, "p/file-stem.jsonl", rows)
    ref = load(tmp_path)
    assert {k: v.output_tokens for k, v in ref.daily().items()} == {
        "2025-09-02": 2,
        "2025-09-30": 3,
        "2025-10-01": 0,
    }
    assert {k: v.entries for k, v in ref.daily("Asia/Tokyo").items()} == {
        "2025-09-02": 1,
        "2025-10-01": 2,
    }
    assert {k: v.entries for k, v in ref.monthly().items()} == {"2025-09": 2, "2025-10": 1}
    assert {k: v.entries for k, v in ref.sessions().items()} == {"file-stem": 1, "s1": 2}
    assert set(ref.models()) == {"claude-sonnet-4-20250514", "claude-opus-4-20250514"}
    total = ref.totals()
    assert (total.input_tokens, total.output_tokens, total.entries) == (7, 5, 3)
    assert total.total_tokens == 12
