"""The progress display's text (``cli/progress.py``): fits 80 columns, rates, ETA, caught up,
plain lines, counters across restarts, the final summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestor.cli.progress import (
    Rate,
    Snapshot,
    Tally,
    eta,
    plain_line,
    screen_lines,
    summary_lines,
)

BUSY = Snapshot(
    files=280,
    lines_read=12_345,
    records_stored=11_000,
    dead_letters=45,
    bytes_done=25,
    bytes_total=100,
    lines_per_s=4210.4,
    eta_s=95,
)
HUGE = Snapshot(
    files=1_234_567,
    lines_read=9_876_543_210,
    records_stored=9_876_543_000,
    dead_letters=123_456_789,
    bytes_done=1,
    bytes_total=3,
    lines_per_s=123_456_789.0,
    eta_s=400_000,
)


def test_busy_display_has_every_figure_in_80_columns() -> None:
    read, stored = screen_lines(BUSY, width=80)
    assert read == "read 12,345 lines  25% of the bytes  4,210 lines/s  ETA 1:35  280 files"
    assert stored == "stored 11,000 records  45 dead letters  1,300 lines behind"
    assert all(len(line) <= 80 for line in (read, stored))


@pytest.mark.parametrize("width", [80, 60, 40, 20])
def test_huge_numbers_never_pass_the_width(width: int) -> None:
    lines = screen_lines(HUGE, width=width)
    assert all(len(line) <= width for line in lines), lines
    assert lines[0].startswith("read 9,876,543,210")


def test_lowest_priority_gives_way_first() -> None:
    read, stored = screen_lines(HUGE, width=80)
    assert "ETA 111:06:40" in read and "files" not in read
    assert stored.endswith("lines behind")  # the status stays, the dead letters give way


def test_caught_up_drops_rate_and_eta() -> None:
    done = Snapshot(
        files=3, lines_read=100, records_stored=95, dead_letters=5, bytes_done=9, bytes_total=9,
        lines_per_s=50.0, eta_s=0.0, caught_up=True,
    )  # fmt: skip
    assert screen_lines(done) == [
        "read 100 lines  100% of the bytes  3 files",
        "stored 95 records  5 dead letters  caught up",
    ]


def test_behind_never_negative_after_a_replay() -> None:
    assert Snapshot(lines_read=10, records_stored=12).behind == 0


def test_plain_mode_is_one_line() -> None:
    line = plain_line(BUSY)
    assert "\n" not in line
    assert line.startswith("read 12,345 lines") and "1,300 lines behind" in line
    assert plain_line(Snapshot(starting=True)) == "starting the worker"
    assert len(screen_lines(Snapshot(starting=True))) == 1


def test_eta() -> None:
    assert eta(0, None) == 0.0
    assert eta(100, None) is None
    assert eta(100, 0.0) is None
    assert eta(100, 20.0) == 5.0


def test_rate_over_a_window() -> None:
    rate = Rate(window_s=10)
    assert rate.add(0.0, 0, 0) is None
    assert rate.add(2.0, 200, 1000) == (100.0, 500.0)
    for t in range(3, 30):
        rate.add(float(t), 200 + (t - 2) * 10, 1000)
    # Only the last ~10 s count: the early burst is forgotten.
    lines, _ = rate.add(30.0, 200 + 28 * 10, 1000) or (0.0, 0.0)
    assert lines == pytest.approx(10.0)


def test_tally_carries_counts_across_restarts() -> None:
    tally = Tally()
    assert tally.update("read", 11, 500) == 500
    assert tally.update("read", 11, 700) == 700
    assert tally.update("read", 12, 30) == 730  # a new pid counts from 0 again
    assert tally.update("read", 12, 50) == 750
    assert tally.update("read", 12, 10) == 760  # went down: restarted in place (execv)
    assert tally.total("read") == 760
    assert tally.total("other") == 0


def test_summary_after_a_stop_says_how_to_resume(tmp_path: Path) -> None:
    rules = [{"rule": f"rule_{i}", "lines": 100 - i} for i in range(10)]
    lines = summary_lines(
        run={"lines_read": 3000, "records_stored": 2990, "dead_letters": 10},
        stored=5000,
        skipped=rules,
        data_dir=tmp_path,
        stopped=True,
    )
    text = "\n".join(lines)
    assert lines[0] == "this run: read 3,000 lines, stored 2,990 records, 10 dead letters"
    assert f"in all: 5,000 transcript lines stored, {sum(100 - i for i in range(10)):,}" in text
    assert "       100  rule_0" in text and "… and 2 more reasons" in text
    assert f"data in {tmp_path}" in text
    assert lines[-1].startswith("stopped; run `ingestor up` again to resume")


def test_summary_at_the_end_of_once_does_not_ask_to_resume(tmp_path: Path) -> None:
    lines = summary_lines(run={}, stored=0, skipped=[], data_dir=tmp_path, stopped=False)
    assert lines == [
        "this run: read 0 lines, stored 0 records, 0 dead letters",
        "in all: 0 transcript lines stored, 0 dead letters",
        f"data in {tmp_path} (reports: `ingestor report daily`)",
    ]
