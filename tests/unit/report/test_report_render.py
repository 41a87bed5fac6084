"""Tables for people: every report shape renders, and fits an 80-column terminal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingestor.report.build import build_from_entries
from ingestor.report.render import render_table
from ingestor.report.request import ReportRequest
from ingestor.usage.entry import Entry

NOW = 1_760_000_000_000


def _entries() -> list[Entry]:
    out = []
    for i in range(40):
        out.append(
            Entry(
                timestamp_ms=1_757_000_000_000 + i * 3_600_000 * 7,
                project=f"-home-dev-src-project-with-a-long-name-{i % 3}",
                session_id=f"{i % 5:08d}-aaaa-bbbb-cccc-1234567890ab",
                project_path=f"-home-dev-src-project-with-a-long-name-{i % 3}",
                model=("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", None)[i % 3],
                input_tokens=123_456 * i,
                output_tokens=98_765 * i,
                cache_creation_tokens=1_234_567 * i,
                cache_read_tokens=12_345_678 * i,
                cost=Decimal("123.456789") * i,
                scope=("laptop", "desktop")[i % 2],
            )
        )
    return out


@pytest.mark.parametrize(
    "request_",
    [
        ReportRequest("daily"),
        ReportRequest("weekly"),
        ReportRequest("monthly"),
        ReportRequest("session"),
        ReportRequest("blocks"),
        ReportRequest("models"),
        ReportRequest("daily", instances=True),
        ReportRequest("monthly", machines=True),
    ],
    ids=lambda r: r.kind + ("-instances" if r.instances else "-machines" if r.machines else ""),
)
@pytest.mark.parametrize("breakdown", [False, True])
def test_every_shape_fits_80_columns(request_: ReportRequest, breakdown: bool) -> None:
    report = build_from_entries(_entries(), request_, now_ms=NOW)
    table = render_table(report, breakdown=breakdown, width=80)
    assert "Total" in table and "$" in table
    assert max(len(line) for line in table.splitlines()) <= 80, table
    header = next(line for line in table.splitlines() if "Input" in line)
    assert header.rstrip().endswith("Cost"), table  # nothing cut off on the right


def test_wide_terminals_get_the_cache_columns() -> None:
    report = build_from_entries(_entries(), ReportRequest("daily"), now_ms=NOW)
    assert "Cache Read" in render_table(report, width=140)
    assert "Cache Read" not in render_table(report, width=80)


def test_no_rows_says_so_like_ccusage() -> None:
    report = build_from_entries([], ReportRequest("daily"), now_ms=NOW)
    assert render_table(report, width=80) == "No usage data found.\n"
