"""chdb under the faults it meets: a broken data part (issue #11).

Under a full disk chdb 26.9 commits some merged parts with empty files ("Empty marks file"); every
read of the table then fails until the session is reopened, when ClickHouse detaches the broken
part and brings back the parts it was merged from. Here the part is broken as the full disk left
it: its marks file emptied.

An insert's part breaks too, and its rows are gone; then the insert, delivered again with the same
deduplication token, must store them rather than be "deduplicated" against the lost part.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingestor.clickhouse.disk import check_written
from ingestor.clickhouse.engine import ClickHouse
from ingestor.errors import StorageError

pytestmark = pytest.mark.integration


def _break_the_active_part(ch: ClickHouse, table: str, *, newest: bool = False) -> str:
    """Empty the marks of the table's first (or ``newest``) active part; its name."""
    order = "DESC" if newest else "ASC"
    [(path, name), *_] = ch.query(
        f"SELECT path, name FROM system.parts WHERE table = '{table}' AND active"
        f" AND database = currentDatabase() ORDER BY min_block_number {order}"
    )
    marks = [f for f in Path(path).iterdir() if ".mrk" in f.name or ".cmrk" in f.name]
    assert marks, list(Path(path).iterdir())
    marks[0].write_bytes(b"")
    ch.execute("SYSTEM DROP MARK CACHE")  # the next read loads the marks from disk
    return str(name)


@pytest.fixture
def ch(clickhouse_empty: ClickHouse) -> ClickHouse:
    if clickhouse_empty.target.kind != "chdb":
        pytest.skip("a server detaches broken parts itself")
    return clickhouse_empty


def test_a_broken_merged_part_is_detached_and_its_rows_read_from_the_parts_it_merged(
    ch: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    ch.execute("CREATE TABLE t (k UInt64, v String) ENGINE = MergeTree ORDER BY k")
    ch.execute("INSERT INTO t SELECT number, toString(number) FROM numbers(1000)")
    ch.execute("INSERT INTO t SELECT number + 1000, toString(number) FROM numbers(1000)")
    ch.execute("OPTIMIZE TABLE t FINAL")  # one merged part; the two it was made of are outdated
    broken = _break_the_active_part(ch, "t")

    assert ch.query("SELECT count(), sum(k) FROM t") == [(2000, 1999000)]
    detached = ch.query("SELECT name, reason FROM system.detached_parts WHERE table = 't'")
    assert [(name, reason) for name, reason in detached] == [
        (f"broken-on-start_{broken}", "broken-on-start")
    ]
    assert f"detached a broken merged part on opening: ingestor.t: broken-on-start_{broken}" in (
        caplog.text
    )
    # Inserts go on: the Arrow path, after the reopen too.
    ch.insert("t", [{"k": 5000, "v": "x"}], token="after")
    assert ch.query("SELECT count() FROM t") == [(2001,)]


def test_a_lost_insert_delivered_again_is_stored_not_deduplicated(
    ch: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    ch.execute(
        "CREATE TABLE t (k UInt64, v String) ENGINE = ReplacingMergeTree ORDER BY k"
        " SETTINGS non_replicated_deduplication_window = 100"
    )
    first = [{"k": k, "v": "a"} for k in range(150)]
    ch.insert("t", first, token="batch-1")
    ch.insert("t", [{"k": 1000, "v": "b"}], token="batch-2")
    broken = _break_the_active_part(ch, "t")  # batch-1's

    # batch-1's rows went with its part (sum: count() alone is answered without reading it)
    assert ch.query("SELECT count(), sum(k) FROM t") == [(1, 1000)]
    assert (
        f"detached a broken part of an insert on opening: ingestor.t: broken-on-start_{broken}"
        in (caplog.text)
    )
    ch.insert("t", first, token="batch-1")  # the worker delivers that batch again
    ch.insert("t", [{"k": 1000, "v": "b"}], token="batch-2")  # and this one is still stored
    assert ch.query("SELECT count(), sum(k) FROM t") == [(151, sum(range(150)) + 1000)]


def test_a_batch_written_as_the_disk_filled_is_read_back_and_refused_if_a_part_broke(
    ch: ClickHouse,
) -> None:
    """A part committed with empty files is found before the batch is acknowledged: the disk
    under its reserve after the write, ``check_written`` reads the parts written since the batch
    began, the engine detaches the broken one, and the batch is refused, to be delivered (and
    stored, its token released) again. A healthy batch passes the same read."""
    full = 1 << 30  # a reserve (MB) no disk has free: the write ended on a full disk
    ch.execute(
        "CREATE TABLE t (k UInt64, v String) ENGINE = ReplacingMergeTree ORDER BY k"
        " SETTINGS non_replicated_deduplication_window = 100"
    )
    began, lost = time.time(), ch.lost_inserts()
    ch.insert("t", [{"k": 1000, "v": "b"}], token="batch-0")
    check_written(ch, full, since_s=began, lost_before=lost)  # read back, healthy: acknowledged

    began = time.time()
    first = [{"k": k, "v": "a"} for k in range(150)]
    ch.insert("t", first, token="batch-1")
    _break_the_active_part(ch, "t", newest=True)  # batch-1's, committed with empty marks
    with pytest.raises(StorageError, match="full disk"):
        check_written(ch, full, since_s=began, lost_before=lost)
    assert ch.lost_inserts() == lost + 1
    ch.insert("t", first, token="batch-1")  # delivered again: stored, not deduplicated
    assert ch.query("SELECT count(), sum(k) FROM t") == [(151, sum(range(150)) + 1000)]
