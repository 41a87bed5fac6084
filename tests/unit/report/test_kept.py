"""Answers kept on disk (``report/kept.py``): what changes the engine's state and what does not,
and the kept file's round trip. The engine's files are laid out by hand, as chdb lays them out
(``store/<prefix>/<uuid>/<part>/``); ``test_report_kept.py`` runs the real engine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ingestor.report.kept import KeptAnswers, code_state, engine_state
from ingestor.report.request import ReportRequest


@pytest.fixture
def engine(tmp_path: Path) -> Path:
    root = tmp_path / "clickhouse"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "ingestor.sql").write_text("ATTACH DATABASE ingestor")
    table = root / "store" / "a58" / "a58-table"
    for part in ("202509_1_1_0", "202509_2_2_0", "detached", "deduplication_logs"):
        (table / part).mkdir(parents=True)
        (table / part / "data.bin").write_bytes(b"x")
    (table / "format_version.txt").write_text("1")
    definitions = root / "store" / "b11" / "b11-database"
    definitions.mkdir(parents=True)
    (definitions / "counted_usage.sql").write_text("ATTACH TABLE counted_usage")
    rocksdb = root / "store" / "c22" / "c22-rocksdb"
    rocksdb.mkdir(parents=True)
    for name in ("CURRENT", "IDENTITY", "LOG", "000012.sst"):
        (rocksdb / name).write_text(name)
    return root


def _table(engine: Path) -> Path:
    return engine / "store" / "a58" / "a58-table"


def test_a_new_or_removed_part_changes_the_state(engine: Path) -> None:
    before = engine_state(engine)
    (_table(engine) / "202509_3_3_0").mkdir()
    added = engine_state(engine)
    shutil.rmtree(_table(engine) / "202509_1_1_0")
    assert len({before, added, engine_state(engine)}) == 3


def test_a_part_written_again_under_its_name_changes_the_state(engine: Path) -> None:
    # A table truncated and filled again after a restart numbers its parts from 1 again.
    part = _table(engine) / "202509_1_1_0"
    before = engine_state(engine)
    shutil.rmtree(part)
    part.mkdir()
    os.utime(part, ns=(1, 1))
    assert engine_state(engine) != before


def test_a_changed_definition_changes_the_state(engine: Path) -> None:
    before = engine_state(engine)
    (engine / "store" / "b11" / "b11-database" / "counted_usage.sql").write_text("ATTACH TABLE x2")
    table_changed = engine_state(engine)
    (engine / "metadata" / "ingestor.sql").write_text("ATTACH DATABASE ingestor ENGINE = Atomic")
    assert len({before, table_changed, engine_state(engine)}) == 3


def test_what_no_answer_reads_leaves_the_state_as_it_was(engine: Path) -> None:
    before = engine_state(engine)
    table = _table(engine)
    (table / "tmp_insert_202509_4_4_0").mkdir()  # an insert under way
    (table / "delete_tmp_202509_2_2_0").mkdir()
    (table / "detached" / "broken_202509_9_9_0").mkdir()
    (table / "deduplication_logs" / "deduplication_log_2.txt").write_text("token")
    rocksdb = engine / "store" / "c22" / "c22-rocksdb"
    (rocksdb / "LOG").write_text("opened again")
    (rocksdb / "000013.sst").write_text("keys")
    assert engine_state(engine) == before


def test_no_engine_has_no_state(tmp_path: Path) -> None:
    assert engine_state(tmp_path / "nothing") is None


def test_an_answer_is_kept_for_its_request_state_and_code(tmp_path: Path) -> None:
    kept = KeptAnswers(tmp_path / "answers", code="c1")
    daily = ReportRequest("daily", tz="Asia/Kathmandu")
    kept.put(daily, "s1", b'{"daily": []}')
    assert kept.get(daily, "s1") == b'{"daily": []}'
    assert kept.get(daily, "s2") is None
    assert kept.get(ReportRequest("daily", tz="UTC"), "s1") is None
    assert KeptAnswers(tmp_path / "answers", code="c2").get(daily, "s1") is None


def test_a_new_answer_replaces_the_old_and_the_oldest_go(tmp_path: Path) -> None:
    root = tmp_path / "answers"
    kept = KeptAnswers(root, code="c", size=2)
    requests = [ReportRequest(kind) for kind in ("daily", "monthly", "session")]
    for n, request in enumerate(requests):
        kept.put(request, "s", b"old")
        kept.put(request, "s", str(n).encode())
        for path in root.iterdir():  # the one just kept is the newest (a clock tick is coarse)
            if kept.get(request, "s") == path.read_bytes().split(b"\n", 1)[1]:
                os.utime(path, ns=(n + 10, n + 10))
    assert [kept.get(r, "s") for r in requests] == [None, b"1", b"2"]
    assert len(list(root.iterdir())) == 2


def test_the_oldest_go_past_the_bytes_bound_and_the_newest_stays(tmp_path: Path) -> None:
    root = tmp_path / "answers"
    kept = KeptAnswers(root, code="c", max_bytes=2500)
    requests = [ReportRequest(kind) for kind in ("daily", "monthly", "session")]
    for n, request in enumerate(requests):
        kept.put(request, "s", bytes(1000))
        for path in root.iterdir():  # the one just kept is the newest (a clock tick is coarse)
            if path.stat().st_mtime_ns > 10**6:
                os.utime(path, ns=(n + 10, n + 10))
    assert [kept.get(r, "s") is not None for r in requests] == [False, True, True]
    huge = ReportRequest("models")
    kept.put(huge, "s", bytes(5000))
    assert [kept.get(r, "s") is not None for r in [*requests, huge]] == [False] * 3 + [True]


def test_a_damaged_kept_file_is_no_answer(tmp_path: Path) -> None:
    kept = KeptAnswers(tmp_path / "answers", code="c")
    kept.put(ReportRequest("daily"), "s", b"{}")
    [path] = (tmp_path / "answers").iterdir()
    path.write_bytes(b"not json\n{}")
    assert kept.get(ReportRequest("daily"), "s") is None


def test_an_unwritable_dir_keeps_nothing_and_raises_nothing(tmp_path: Path) -> None:
    (tmp_path / "answers").write_text("a file where the dir should be")
    kept = KeptAnswers(tmp_path / "answers", code="c")
    kept.put(ReportRequest("daily"), "s", b"{}")
    assert kept.get(ReportRequest("daily"), "s") is None


def test_the_code_state_is_the_same_twice() -> None:
    assert code_state() == code_state()
