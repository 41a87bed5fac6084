"""Releasing the deduplication tokens of parts whose rows are gone from a MergeTree
deduplication log."""

from __future__ import annotations

from pathlib import Path

from ingestor.clickhouse.dedup_log import LOG_DIR, release, stored_blocks


def _table(tmp_path: Path, *logs: str) -> Path:
    (tmp_path / LOG_DIR).mkdir()
    for n, text in enumerate(logs, start=1):
        (tmp_path / LOG_DIR / f"deduplication_log_{n}.txt").write_text(text)
    return tmp_path


def _blocks(table: Path) -> dict[str, str]:
    return stored_blocks(sorted((table / LOG_DIR).iterdir()))


def test_release_drops_only_the_blocks_a_part_still_stores(tmp_path: Path) -> None:
    table = _table(
        tmp_path,
        "1\tall_1_1_1\ta\n1\tall_2_2_1\tb\n",
        # c was stored by all_2_2_1 once, dropped, then stored again by all_3_3_1
        "1\tall_2_2_1\tc\n2\tall_2_2_1\tc\n1\tall_3_3_1\tc\n1\tall_2_2_1\td\n",
    )
    assert release(table, "all", 2, 2) == 2
    assert _blocks(table) == {"a": "all_1_1_1", "c": "all_3_3_1"}
    newest = (table / LOG_DIR / "deduplication_log_2.txt").read_text()
    assert newest.endswith("2\tall_2_2_1\tb\n2\tall_2_2_1\td\n")
    assert release(table, "all", 2, 2) == 0  # done twice, nothing more


def test_a_lost_merge_releases_the_inserts_it_was_made_of(tmp_path: Path) -> None:
    table = _table(
        tmp_path,
        "1\t2026_1_1_1\ta\n1\t2026_2_2_0\tb\n1\t2026_3_3_0_7\tc\n1\t2026_4_4_0\td\n"
        "1\t2025_2_2_0\te\n1\t20261_2_2_0\tf\n",
    )
    assert release(table, "2026", 1, 3) == 3  # not block 4, nor another partition's 2
    assert _blocks(table) == {"d": "2026_4_4_0", "e": "2025_2_2_0", "f": "20261_2_2_0"}


def test_the_log_files_are_read_in_numeric_order(tmp_path: Path) -> None:
    logs = ["1\tall_1_1_0\tx\n"] + [""] * 9 + ["2\tall_1_1_0\tx\n1\tall_9_9_0\tx\n"]
    table = _table(tmp_path, *logs)  # deduplication_log_11 after _2 .. _10
    assert release(table, "all", 1, 1) == 0
    assert release(table, "all", 9, 9) == 1


def test_a_table_without_a_log_has_nothing_to_release(tmp_path: Path) -> None:
    assert release(tmp_path, "all", 1, 1) == 0


def test_a_record_cut_short_is_skipped_and_ours_start_on_their_own_line(tmp_path: Path) -> None:
    table = _table(tmp_path, "1\tall_1_1_0\tx\n1\tall_2_2")
    assert release(table, "all", 1, 1) == 1
    text = (table / LOG_DIR / "deduplication_log_1.txt").read_text()
    assert text == "1\tall_1_1_0\tx\n1\tall_2_2\n2\tall_1_1_0\tx\n"
