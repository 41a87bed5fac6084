"""The winners kept at write time (``counted_usage``) equal the rule run over everything stored.

The oracle is ``entries_from_columns`` over ``ENTRY_SQL``: ccusage's rule in Python over every
stored usage line of each file's current generation, in ccusage's order. Reports read the
maintained table (summed per day and file in ClickHouse) and must print what the oracle's
entries print, byte for byte.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from builders import Wrapped, store_lines, usage_line
from pipeline import stack_env

from ingestor.clickhouse import winners
from ingestor.clickhouse.engine import ClickHouse, open_clickhouse
from ingestor.clickhouse.migrations import apply_schema
from ingestor.clickhouse.positions import file_positions
from ingestor.clickhouse.usage_rollup import (
    ensure_usage_rollup,
    roll_up_counted,
    usage_rollup_ready,
)
from ingestor.clickhouse.winners import (
    ensure_winners,
    maintain_winners,
    rebuild_winners,
    winners_ready,
)
from ingestor.clickhouse.write import Batch, write_batch
from ingestor.corpus.generate import generate
from ingestor.errors import Location
from ingestor.local.tansu import tansu_binary
from ingestor.plain_settings import ClickHouseTarget
from ingestor.producer.discover import find_jsonl
from ingestor.producer.lines import envelopes, parse_chunk
from ingestor.report import ReportRequest
from ingestor.report.build import build, build_from_entries
from ingestor.report.counted import line_entries
from ingestor.report.entries import ENTRY_SQL, entries_from_columns
from ingestor.report.local_day import day_of, local_day_sql
from ingestor.report.render import render_json
from ingestor.rows.arrow import arrow_table
from ingestor.rows.columns import RowColumns
from ingestor.rows.records import TRANSCRIPT_COLUMNS, transcript_row
from ingestor.usage.entry import Entry
from ingestor.usage.prices import CostMode
from ingestor.usage.reports_core import local_date, zone
from ingestor.usage.winners import StoredCopy
from ingestor.wire import TranscriptSource, decode_message
from ingestor.worker.process import process_decoded, with_dead_letter_rows
from ingestor.worker.restore import session_seeds

pytestmark = pytest.mark.integration

NOW_MS = 1_767_225_600_000  # 2026-01-01: --last counts back from here


def oracle(ch: ClickHouse, mode: CostMode = CostMode.AUTO) -> list[Entry]:
    return entries_from_columns(ch.query_columns(ENTRY_SQL), mode=mode)


def assert_reports_equal_the_oracle(ch: ClickHouse) -> None:
    assert winners_ready(ch)
    for mode in CostMode:
        assert line_entries(ch, mode=mode) == oracle(ch, mode)
    for request in (
        *(ReportRequest(k, tz=tz) for k in ("daily", "weekly", "monthly", "session", "models")
          for tz in ("UTC", "Asia/Kathmandu", "America/New_York")),
        ReportRequest("daily", instances=True, mode=CostMode.CALCULATE, order="desc"),
        ReportRequest("monthly", mode=CostMode.DISPLAY, machines=True),
        ReportRequest("session", since="20250102", until="20250110", tz="Europe/Paris"),
        ReportRequest("weekly", start_of_week="monday", last=60),
        ReportRequest("blocks", tz="UTC"),
    ):  # fmt: skip
        ours = render_json(build(ch, request, now_ms=NOW_MS))
        theirs = build_from_entries(oracle(ch, request.mode), request, now_ms=NOW_MS)
        assert ours == render_json(theirs), request


def assert_reports_equal_the_oracle_from_lines(ch: ClickHouse) -> None:
    """Winners not kept yet: reports decide from the stored lines themselves."""
    request = ReportRequest("daily", tz="UTC")
    ours = render_json(build(ch, request, now_ms=NOW_MS))
    assert ours == render_json(build_from_entries(oracle(ch), request, now_ms=NOW_MS))


def up_once(corpus: Path, data: Path) -> None:
    try:
        tansu_binary()
    except Exception as exc:  # noqa: BLE001 - any reason there is no broker binary
        pytest.skip(f"no embedded broker: {exc}")
    # Many batches: groups decided again and again.
    env = stack_env(data, batch_max_rows="1000", batch_max_age_s="0.3")
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "up", str(corpus / "projects"), "--once"],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_up_once_keeps_the_winners_of_a_generated_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=6_000, seed=909, odd_rate=0.02)
    data = tmp_path / "data"
    up_once(corpus, data)
    target = ClickHouseTarget(kind="chdb", database="ingestor", path=data / "clickhouse")
    with open_clickhouse(target) as ch:
        [(rows,)] = ch.query("SELECT count() FROM counted_usage")
        assert rows > 1000
        assert usage_rollup_ready(ch)  # reports read the sums
        assert_reports_equal_the_oracle(ch)


SOURCE = TranscriptSource(file="/p/projects/alpha/s1.jsonl", project="alpha", scope="h")
OTHER = TranscriptSource(file="/p/projects/alpha/s2.jsonl", project="alpha", scope="h")


def _counted(ch: ClickHouse) -> set[tuple[str, int, int]]:
    return {
        (str(f), int(g), int(o))
        for f, g, o in ch.query(
            "SELECT source_file, source_generation, source_offset FROM counted_usage "
            "GROUP BY source_file, source_generation, source_offset, dedup_scope, message_id, "
            "slot_file, slot_offset HAVING sum(sign) > 0"
        )
    }


class _NoArrow(Wrapped):
    """The engine through the interface's defaults only, as the server engine takes it:
    ``query_arrow`` built from Python values, an Arrow table inserted as row dicts."""

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        if hasattr(rows, "to_pylist"):
            rows = rows.to_pylist()
        super().insert(table, rows, token=token)


@pytest.mark.parametrize("arrow", ["arrow", "no-arrow", "inferred"])
def test_a_tombstone_hands_a_group_to_the_other_file_and_replays_change_nothing(
    clickhouse: ClickHouse, arrow: str
) -> None:
    if arrow == "no-arrow":
        clickhouse = _NoArrow(clickhouse)
    elif arrow == "inferred":  # Arrow types from Python values, inserted as Arrow (chdb+tcp)
        clickhouse = Wrapped(clickhouse)
    ts = "2025-01-05T10:00:00Z"
    big = usage_line(ts=ts, message_id="m1", request_id="r1", inp=500)
    small = usage_line(ts=ts, message_id="m1", request_id="r1", inp=5)
    loose = usage_line(ts=ts, inp=7)
    store_lines(clickhouse, SOURCE, [(0, big), (100, loose)])
    store_lines(clickhouse, OTHER, [(0, small)])
    assert _counted(clickhouse) == {(SOURCE.file, 0, 0), (SOURCE.file, 0, 100)}
    before = clickhouse.query("SELECT count() FROM counted_usage")

    # The same lines again (a replay), and a batch announcing nothing new: no row written.
    store_lines(clickhouse, SOURCE, [(0, big), (100, loose)])
    store_lines(clickhouse, OTHER, [(0, small)])
    assert clickhouse.query("SELECT count() FROM counted_usage") == before

    # s1.jsonl deleted: its tombstone (generation 1, no lines) arrives as a position row.
    tomb = {"source_file": SOURCE.file, "source_generation": 1, "end_offset": 0}
    assert maintain_winners(clickhouse, {"file_positions": [tomb]}) == 3  # -1, -1, +1
    clickhouse.insert("file_positions", [tomb])
    assert _counted(clickhouse) == {(OTHER.file, 0, 0)}
    assert maintain_winners(clickhouse, {"file_positions": [tomb]}) == 0
    assert_reports_equal_the_oracle(clickhouse)


def test_a_batch_names_its_groups_whatever_their_ids_and_decides_them_only(
    clickhouse: ClickHouse,
) -> None:
    # The batch's groups travel to ClickHouse as JSON in a string literal: quotes, backslashes
    # and any text survive both. A line without message id is a group by itself.
    ts = "2025-01-05T10:00:00Z"
    odd = "m'\\\"x\u00e9\u2028\n"
    store_lines(clickhouse, OTHER, [(0, usage_line(ts=ts, message_id=odd, request_id="r", inp=9))])
    store_lines(
        clickhouse,
        SOURCE,
        [
            (0, usage_line(ts=ts, message_id=odd, request_id="r", inp=90)),
            (100, usage_line(ts=ts, inp=7)),
            (200, usage_line(ts=ts, message_id="m2", request_id="r2", inp=1)),
        ],
    )
    assert _counted(clickhouse) == {
        (SOURCE.file, 0, 0), (SOURCE.file, 0, 100), (SOURCE.file, 0, 200)
    }  # fmt: skip
    [(copies,)] = clickhouse.query("SELECT count() FROM usage_copies")
    assert copies == 4
    assert_reports_equal_the_oracle(clickhouse)
    # A replay of one line decides its group again and writes nothing.
    before = clickhouse.query("SELECT count() FROM counted_usage")
    store_lines(clickhouse, SOURCE, [(100, usage_line(ts=ts, inp=7))])
    assert clickhouse.query("SELECT count() FROM counted_usage") == before


@pytest.mark.parametrize("listed_scopes", [0, 100], ids=["pairs", "one-list-a-scope"])
def test_a_batch_of_many_scopes_decides_each_scopes_groups_apart(
    clickhouse: ClickHouse, monkeypatch: pytest.MonkeyPatch, listed_scopes: int
) -> None:
    """Groups are looked up by (scope, message id) both ways ``_touched_sql`` names them: the
    same message id in two scopes is two groups, each decided by its own copies."""
    monkeypatch.setattr(winners, "_LISTED_SCOPES", listed_scopes)
    ts = "2025-01-05T10:00:00Z"
    odd = "m'\\\"x\u00e9"
    scopes = [f"h{n}" for n in range(8)]
    first = {s: TranscriptSource(f"/p/projects/{s}/a.jsonl", s, scope=s) for s in scopes}
    later = {s: TranscriptSource(f"/p/projects/{s}/b.jsonl", s, scope=s) for s in scopes}
    for n, scope in enumerate(scopes):  # the copy a later batch's line beats, in every scope
        store_lines(clickhouse, first[scope], [(0, usage_line(ts=ts, message_id=odd, inp=n))])
    rows = [
        transcript_row(line, later[scope], offset, 100)
        for scope in scopes
        for offset, line in [
            (0, usage_line(ts=ts, message_id=odd, inp=100)),
            (100, usage_line(ts=ts, message_id="shared", request_id="r", out=2)),
            (200, usage_line(ts=ts, inp=7)),
        ]
    ]
    write_batch(clickhouse, {"transcript_lines": rows}, token="b", retries=0, backoff_s=0)
    assert _counted(clickhouse) == {(later[s].file, 0, o) for s in scopes for o in (0, 100, 200)}
    assert_copies_are_the_lines(clickhouse)
    assert_reports_equal_the_oracle(clickhouse)


def test_a_batch_whose_sums_a_crash_lost_is_summed_at_start_and_twice_is_once(
    clickhouse: ClickHouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingestor.clickhouse.winners as winners

    ts = "2025-01-05T10:00:00Z"
    store_lines(clickhouse, SOURCE, [(0, usage_line(ts=ts, message_id="m1", request_id="r1"))])

    def crash(ch: ClickHouse, batch_id: str, counted: Any = None) -> None:
        raise KeyboardInterrupt  # the process dies between the batch's insert and its sums

    monkeypatch.setattr(winners, "roll_up_counted", crash)
    bigger = usage_line(ts="2025-01-05T23:50:00Z", message_id="m1", request_id="r1", inp=900)
    with pytest.raises(KeyboardInterrupt):
        store_lines(clickhouse, SOURCE, [(100, bigger), (200, usage_line(ts=ts, inp=3))])
    monkeypatch.undo()
    assert not usage_rollup_ready(clickhouse)  # a batch is not summed: reports read the lines
    assert_reports_equal_the_oracle(clickhouse)
    assert ensure_usage_rollup(clickhouse) == 1  # the worker, at its next start
    assert usage_rollup_ready(clickhouse)
    assert_reports_equal_the_oracle(clickhouse)
    for (batch,) in clickhouse.query("SELECT DISTINCT batch_id FROM counted_usage"):
        roll_up_counted(clickhouse, str(batch))  # again: a crash after the sums, before the record
    assert_reports_equal_the_oracle(clickhouse)
    [(lines, retracted)] = clickhouse.query("SELECT sum(lines), sum(retracted) FROM usage_rollup")
    assert (lines, retracted) == (2, 1)  # m1's first copy counted, then replaced; the loose line


def test_rebuild_decides_data_stored_before_the_table(clickhouse: ClickHouse) -> None:
    ts = "2025-01-05T10:00:00Z"
    lines = [
        (0, usage_line(ts=ts, message_id="m1", request_id="r1", inp=5)),
        (100, usage_line(ts=ts, message_id="m1", request_id="r1", inp=50)),
        (200, usage_line(ts=ts, message_id="m2", request_id="r9", out=3, sidechain=True)),
        (300, usage_line(ts=ts, inp=1)),
    ]
    store_lines(clickhouse, SOURCE, lines)
    expected = _counted(clickhouse)
    for table in ("counted_usage", "counted_usage_ready", "usage_rollup", "usage_rollup_ready"):
        clickhouse.execute(f"TRUNCATE TABLE {table}")  # as before these tables existed
    assert not winners_ready(clickhouse)
    assert rebuild_winners(clickhouse) == 3
    assert winners_ready(clickhouse)
    assert _counted(clickhouse) == expected
    assert not usage_rollup_ready(clickhouse)
    assert_reports_equal_the_oracle(clickhouse)  # from the lines
    assert ensure_usage_rollup(clickhouse) == 1
    assert usage_rollup_ready(clickhouse)
    assert_reports_equal_the_oracle(clickhouse)  # from the sums


def test_a_data_dir_from_before_0016_has_its_winners_made_again_with_their_tool_uses(
    clickhouse: ClickHouse,
) -> None:
    ts = "2025-01-05T10:00:00Z"
    lines = [
        (0, usage_line(ts=ts, message_id="m1", request_id="r1", inp=5, tools=("Bash",))),
        (100, usage_line(ts=ts, message_id="m1", request_id="r1", inp=50, tools=("Read",))),
        (200, usage_line(ts=ts, inp=1, tools=("Bash", "Bash"))),
    ]
    store_lines(clickhouse, SOURCE, lines)
    expected = _counted(clickhouse)
    # As 0015 left a data dir: no tool uses on the copies and counted lines, 0016 not applied.
    for table in ("usage_copies", "counted_usage"):
        clickhouse.execute(f"ALTER TABLE {table} DROP COLUMN tool_uses")
    clickhouse.execute("DELETE FROM schema_migrations WHERE version = 16")
    assert apply_schema(clickhouse) == ["0016_counted_tool_uses"]
    assert not winners_ready(clickhouse) and not usage_rollup_ready(clickhouse)
    assert_reports_equal_the_oracle_from_lines(clickhouse)
    ensure_winners(clickhouse)  # the worker's start
    assert ensure_usage_rollup(clickhouse) == 1
    assert _counted(clickhouse) == expected
    assert_reports_equal_the_oracle(clickhouse)
    [(_, agg)] = session_seeds(clickhouse)
    assert agg.tool_uses == {"Read": 1, "Bash": 2} and agg.totals.messages == 2


class _Recorded(Wrapped):
    """The real engine, keeping the text of every statement that reads."""

    def __init__(self, real: ClickHouse) -> None:
        super().__init__(real)
        self.reads: list[str] = []

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        self.reads.append(sql)
        return super().query(sql)

    def query_arrow(self, sql: str) -> Any:
        self.reads.append(sql)
        return self._real.query_arrow(sql)


def test_a_batch_reads_the_stored_copies_of_the_groups_stored_before_it_only(
    clickhouse: ClickHouse,
) -> None:
    """A group no earlier batch stored is decided from the batch's own copies (``copy_groups``
    said so): the copies and counted lines read are those of groups stored before."""
    ts = "2025-01-05T10:00:00Z"
    seen = _Recorded(clickhouse)
    store_lines(seen, SOURCE, [(0, usage_line(ts=ts, message_id="old", request_id="r"))])
    assert not [sql for sql in seen.reads if "FROM usage_copies" in sql]
    seen.reads.clear()
    lines = [
        (0, usage_line(ts="2025-01-05T09:00:00Z", message_id="old", request_id="r", inp=9)),
        (100, usage_line(ts=ts, message_id="new", request_id="r", out=3)),
        (200, usage_line(ts=ts, message_id="new", request_id="r", out=4)),
    ]
    store_lines(seen, OTHER, lines)
    [copies] = [sql for sql in seen.reads if "FROM usage_copies" in sql]
    assert "old" in copies and "new" not in copies
    counted = _counted(clickhouse)
    assert len(counted) == 2 and (SOURCE.file, 0, 0) not in counted  # one line a group
    assert_reports_equal_the_oracle(clickhouse)


def test_a_batch_of_lines_without_message_id_asks_copy_groups_nothing(
    clickhouse: ClickHouse,
) -> None:
    """Such lines are groups by their identity: no key to ask, so no lookup of the keys."""
    seen = _Recorded(clickhouse)
    ts = "2025-01-05T10:00:00Z"
    store_lines(seen, SOURCE, [(0, usage_line(ts=ts, inp=3)), (100, usage_line(ts=ts, inp=4))])
    assert not [sql for sql in seen.reads if "copy_groups" in sql]
    assert _counted(clickhouse) == {(SOURCE.file, 0, 0), (SOURCE.file, 0, 100)}
    assert_reports_equal_the_oracle(clickhouse)


def test_a_data_dir_from_before_0017_has_the_groups_of_its_copies_keyed(
    clickhouse: ClickHouse,
) -> None:
    """Copies stored before ``copy_groups`` existed get their keys from the migration: a later
    copy of such a group is decided with them, not as a group of its own."""
    ts = "2025-01-05T10:00:00Z"
    store_lines(clickhouse, SOURCE, [(0, usage_line(ts=ts, message_id="m1", request_id="r1"))])
    clickhouse.execute("TRUNCATE TABLE copy_groups")  # as a data dir before 0017
    clickhouse.execute("DELETE FROM schema_migrations WHERE version = 17")
    assert apply_schema(clickhouse) == ["0017_copy_groups"]
    earlier = "2025-01-05T09:00:00Z"
    store_lines(clickhouse, OTHER, [(0, usage_line(ts=earlier, message_id="m1", request_id="r1"))])
    assert _counted(clickhouse) == {(SOURCE.file, 0, 0)}  # the first file's copy still counts
    assert_reports_equal_the_oracle(clickhouse)


@pytest.mark.parametrize(
    "tz", ["UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Europe/Paris"]
)
def test_the_sql_day_cut_is_pythons(clickhouse: ClickHouse, tz: str) -> None:
    rng = random.Random(tz)
    # around DST changes (seconds before and after), at random, and before 1970
    stamps = [1_711_846_800_000 + d for d in range(-3_700_000, 3_700_000, 599_999)]
    stamps += [1_730_595_600_000 + d for d in range(-3_700_000, 3_700_000, 599_999)]
    stamps += [rng.randrange(-2_000_000_000_000, 4_000_000_000_000) for _ in range(300)]
    zone_ = zone(tz)
    utc_days = {s // 86_400_000 for s in stamps}
    values = ", ".join(f"toInt64({s})" for s in stamps)
    [(days,)] = clickhouse.query(
        f"SELECT groupArray({local_day_sql('ts', zone_, utc_days)}) FROM "
        f"(SELECT arrayJoin([{values}]) AS ts)"
    )
    assert [day_of(d) for d in days] == [local_date(s, zone_) for s in stamps]


@pytest.mark.parametrize("arrow", [True, False], ids=["arrow", "no-arrow"])
def test_a_batch_summed_from_its_rows_is_what_the_sql_sums(
    clickhouse: ClickHouse, arrow: bool
) -> None:
    # rollup_rows (the batch's rows at hand) and _SELECT (read back) must store the same sums:
    # a crash between them is redone by the SQL under the same token.
    import pyarrow as pa  # type: ignore[import-untyped]

    from ingestor.clickhouse.usage_rollup import _SELECT, rollup_rows
    from ingestor.usage.winners import COLUMNS

    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for n in range(400):
        ms = rng.choice([-631_152_000_001, -1, 0, 899_999, 900_000]) + rng.randrange(0, 3_600_000)
        row = {
            "dedup_scope": rng.choice(["h", "k"]), "message_id": f"m{n}",
            "source_file": rng.choice(["/a.jsonl", "/b'.jsonl"]), "source_generation": 0,
            "source_offset": n, "slot_file": rng.choice(["/a.jsonl", "/b'.jsonl"]),
            "slot_offset": rng.randrange(0, 50), "sign": rng.choice([1, 1, -1]),
            "timestamp": datetime.fromtimestamp(ms / 1000, UTC),
            "model": rng.choice(["m1", "m2"]), "speed": rng.choice(["", "fast"]), "version": "2",
            "input_tokens": rng.randrange(0, 10**6), "output_tokens": rng.randrange(0, 9),
            "cache_creation_tokens": 3, "cache_read_tokens": rng.randrange(0, 10**9),
            "cost_usd": Decimal(rng.randrange(0, 10**12)) / 10**10,
            "has_cost_usd": rng.choice([0, 1]),
            "cost_calculated": Decimal(rng.randrange(0, 10**12)) / 10**10,
            "usage_limit_reset_ms": 0,
        }  # fmt: skip
        rows.append(row)
    rows.append({**rows[0], "source_offset": 10_000, "sign": -1, "dedup_scope": "only-minus"})
    clickhouse.insert("counted_usage", [{**r, "batch_id": "b1"} for r in rows])
    table = clickhouse.query_arrow(f"SELECT {', '.join(COLUMNS)} FROM counted_usage")
    if not arrow:  # as the no-arrow engines' tables: types inferred from Python values
        table = pa.table({c: pa.array(table.column(i).to_pylist()) for i, c in enumerate(COLUMNS)})
    else:
        table = table.rename_columns(list(COLUMNS))
    ours = [tuple(r.values()) for r in rollup_rows(table)]
    theirs = clickhouse.query(_SELECT.format(where="batch_id = 'b1'"))
    assert [tuple(tuple(v) if isinstance(v, list) else v for v in r) for r in theirs] == ours


_COPIED = ", ".join(StoredCopy._fields)


def assert_copies_are_the_lines(ch: ClickHouse) -> None:
    """``usage_copies`` holds each stored usage line once, as reading it back gives it."""
    order = "ORDER BY source_file, source_generation, source_offset"
    copies = ch.query(f"SELECT {_COPIED} FROM usage_copies FINAL {order}")
    lines = ch.query(f"SELECT {_COPIED} FROM transcript_lines FINAL WHERE has_usage = 1 {order}")
    assert copies == lines


def test_a_worker_batchs_copies_are_its_lines_as_stored(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    """Lines as the worker holds them (columns from the watcher's envelopes, odd lines among
    them) are copied as ClickHouse stores them, and their winners are the oracle's."""
    corpus = tmp_path / "claude"
    generate(corpus, lines=3_000, seed=17, odd_rate=0.02)
    batch = Batch(1_000, 1e9, lambda: 0.0)
    flushed = 0
    for path in find_jsonl([corpus / "projects"]):
        chunk = parse_chunk(Path(path).read_bytes(), 0, max_record_bytes=890_000, columns=True)
        source = TranscriptSource(file=path, project="p", first_ts=chunk.first_ts, scope="s")
        for n, (_stop, value) in enumerate(
            envelopes(chunk.records, source, max_records=200, max_bytes=900_000)
        ):
            envelope = decode_message("transcript", value)
            processed = process_decoded(
                "transcript", envelope, Location("t", 0, n), bad_line_max_bytes=4096
            )
            batch.add(with_dead_letter_rows(processed).rows)
            if batch.full():
                rows = batch.take()
                lines = rows["transcript_lines"]
                assert isinstance(lines, RowColumns)
                # The copies taken from the lines' Arrow table are the copies' own conversion.
                types = clickhouse.column_types("transcript_lines")
                taken = winners._copies_of(clickhouse, arrow_table(lines, lines.columns, types))
                copies = winners.usage_copies(lines)
                own = arrow_table(copies, winners._COPIED, clickhouse.column_types("usage_copies"))
                assert taken is not None and own is not None and taken.equals(own)
                flushed += 1
                write_batch(clickhouse, rows, token=f"b{flushed}", retries=0, backoff_s=0)
    write_batch(clickhouse, batch.take(), token="last", retries=0, backoff_s=0)
    assert flushed >= 2
    assert_copies_are_the_lines(clickhouse)
    assert_reports_equal_the_oracle(clickhouse)


class _DiesAt(Wrapped):
    """The real engine, until its ``at``-th statement (from 0), which raises instead of running:
    the worker killed (kill -9, full disk) at that step of a batch's write."""

    def __init__(self, real: ClickHouse, at: int) -> None:
        super().__init__(real)
        self.at = at
        self.statements = 0

    def _step(self, what: str) -> None:
        if self.statements == self.at:
            raise KeyboardInterrupt(f"killed before {what[:60]}")  # no handler catches it
        self.statements += 1

    def execute(self, sql: str) -> None:
        self._step(sql)
        super().execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        self._step(sql)
        return super().query(sql)

    def query_arrow(self, sql: str) -> Any:
        self._step(sql)
        return self._real.query_arrow(sql)

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, token: str | None = None
    ) -> None:
        self._step(f"INSERT INTO {table}")
        super().insert(table, rows, token=token)


def _as_columns(rows: list[dict[str, Any]]) -> RowColumns:
    columns = RowColumns(TRANSCRIPT_COLUMNS, times=("file_first_ts", "timestamp"))
    columns.extend(rows)
    return columns


def _unstored(ch: ClickHouse, table: str) -> list[tuple[Any, ...]]:
    """Lines ``table`` names that ``transcript_lines`` does not hold."""
    identity = "(source_file, source_generation, source_offset)"
    return ch.query(
        f"SELECT {identity} FROM {table} WHERE {identity} NOT IN "
        f"(SELECT {identity} FROM transcript_lines)"
    )


@pytest.mark.parametrize("as_columns", [False, True], ids=["dicts", "columns"])
def test_a_batch_killed_at_any_step_is_exact_once_delivered_again(
    clickhouse: ClickHouse, as_columns: bool
) -> None:
    """Every statement of a batch's write, in turn, is where the worker dies; Kafka then
    delivers the batch again (a new token) and the winners, their sums and the positions are
    exact, with nothing counted twice. Each round has files and groups of its own, and groups
    that an earlier batch had already decided (so a round rewrites recorded rows too). Whatever
    the step, a copy or a counted line is one of a stored line. The batch's lines come as dicts
    and as the worker's columns (whose Arrow table the copies are taken from)."""
    ts = "2025-01-05T10:00:00Z"
    at = 0
    while True:
        first = TranscriptSource(file=f"/p/projects/alpha/k{at}.jsonl", project="alpha", scope="h")
        second = TranscriptSource(
            file=f"/p/projects/alpha/k{at}b.jsonl", project="alpha", scope="h"
        )
        shared = f"m{at}"
        store_lines(clickhouse, second, [(0, usage_line(ts=ts, message_id=shared, request_id="r"))])
        lines = [
            (0, usage_line(ts=ts, message_id=shared, request_id="r", inp=50)),  # wins the group
            (100, usage_line(ts=ts, message_id=f"n{at}", request_id="r", out=3)),
            (200, usage_line(ts=ts, inp=7)),  # a group by itself
        ]
        made = [transcript_row(line, first, o, 100) for o, line in lines]
        rows: dict[str, Any] = {"transcript_lines": _as_columns(made) if as_columns else made}
        dying = _DiesAt(clickhouse, at)
        try:
            write_batch(dying, rows, token=f"run1:{at}", retries=0, backoff_s=0)
        except KeyboardInterrupt:
            assert _unstored(clickhouse, "usage_copies") == []
            assert _unstored(clickhouse, "counted_usage") == []
            write_batch(clickhouse, rows, token=f"run2:{at}", retries=0, backoff_s=0)
        else:
            assert dying.statements > 8  # every step of a batch was a place to die
            break
        ensure_usage_rollup(clickhouse)  # the worker's start: a batch whose sums were lost
        assert usage_rollup_ready(clickhouse)
        assert _counted(clickhouse) >= {
            (first.file, 0, 0),
            (first.file, 0, 100),
            (first.file, 0, 200),
        }
        assert (second.file, 0, 0) not in _counted(clickhouse)
        assert file_positions(clickhouse)[(first.file, 0)] == 300
        at += 1
    assert_copies_are_the_lines(clickhouse)
    assert_reports_equal_the_oracle(clickhouse)
    [(summed, signs)] = clickhouse.query(
        "SELECT (SELECT sum(lines) FROM usage_rollup), (SELECT sum(sign) FROM counted_usage)"
    )
    assert summed == signs == len(_counted(clickhouse)) == 3 * at + 3
