"""The session report written from summed columns equals ``usage.reports.session`` over the
entries those columns make (``counted.rollup_entries``'s path), byte for byte: the two ways of
adding groups up per session (columns and integer costs, entries and ``Decimal`` costs) held
equal, over seeded random groups with the cases that decide the output (ties, sessions of
several files and scopes, no tokens, no model, fast, costs past 64 bits, non-ASCII names, day
bounds in a zone). Both feed ``usage.reports.session_rows_json``, which the parity tests hold
to ccusage."""

from __future__ import annotations

import random
from decimal import Decimal

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from ingestor.report.counted import Summed, _entries, decimal_units
from ingestor.report.render import ascii_json, render_json
from ingestor.report.session_columns import money_text, session_json, session_report
from ingestor.usage import reports

_ROOT = "/home/u/.claude/projects"
_FILES = [
    f"{_ROOT}/-home-u-app/aaaa-1111.jsonl",
    f"{_ROOT}/-home-u-app/aaaa-1111/subagents/agent-1.jsonl",  # the same session as above
    f"{_ROOT}/-home-u-app/bbbb-2222.jsonl",
    f"{_ROOT}/-home-u-caf\u00e9/cccc-3333.jsonl",
    f"{_ROOT}/-home-u-emoji-\U0001f600/dddd-4444.jsonl",
    f'{_ROOT}/-home-u-quote"back\\slash\x7f/eeee-5555.jsonl',
    f"{_ROOT}/-home-u-deep/x/y/ffff-6666/z.jsonl",
    "/elsewhere/no-projects-dir.jsonl",
]
_MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "", "<synthetic>", "claude-\u00e9t\u00e9"]


def _summed(seed: int, rows: int, *, wide: bool = False) -> Summed:
    rng = random.Random(seed)
    groups = []
    for _ in range(rows):
        first = 1_757_000_000_000 + rng.randrange(0, 40) * 3_600_000 + rng.randrange(3_600_000)
        tokens = [rng.choice((0, 0, 1, 17, 1_000, 250_000)) for _ in range(4)]
        cost = rng.choice((0, 0, 5, 10**10, 123_456_789, 4 * 10**10, rng.randrange(10**14)))
        if wide and rng.random() < 0.2:
            # Past 64 bits, within the 28 digits a Decimal sum keeps (10**18 USD and more are
            # rounded there, and exact here).
            cost = rng.choice((2**70 + 3, -(2**66), 10**22 + 7))
        groups.append(
            (
                rng.randrange(0, 40) // 24,
                rng.choice(("laptop", "desktop")),
                rng.choice(_FILES),
                rng.choice(_MODELS),
                rng.random() < 0.2,
                first,
                first + rng.choice((0, 0, 1, 90_000)),
                *tokens,
                cost,
            )
        )
    return Summed(*(list(column) for column in zip(*groups, strict=True)), scale=10)


def _reference(summed: Summed, **bounds: str | None) -> str:
    return render_json(reports.session(_entries(summed), **bounds))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize(
    "bounds",
    [
        {"tz": "UTC"},
        {"tz": "Asia/Kathmandu", "since": "20250904", "until": "20250905"},
        {"tz": "America/New_York", "until": "2025-09-04"},
    ],
)
def test_session_from_columns_equals_the_entry_path(seed: int, bounds: dict[str, str]) -> None:
    summed = _summed(seed, rows=1 + seed * 7)
    expected = _reference(summed, **bounds)
    assert render_json(session_report(summed, **bounds)) == expected
    assert session_json(summed, **bounds) == expected.encode()


def test_costs_past_64_bits_are_exact() -> None:
    summed = _summed(7, rows=200, wide=True)
    assert session_json(summed, tz="UTC") == _reference(summed, tz="UTC").encode()


def test_no_groups_is_an_empty_report() -> None:
    summed = Summed([], [], [], [], [], [], [], [], [], [], [], [], scale=10)
    assert session_json(summed, tz="UTC") == _reference(summed, tz="UTC").encode()


def test_a_token_sum_past_64_bits_leaves_the_report_to_render_json() -> None:
    summed = _summed(3, rows=5)
    summed.input_tokens[0] = 2**65
    assert session_json(summed, tz="UTC") is None  # build_json renders session_report instead
    assert render_json(session_report(summed, tz="UTC")) == _reference(summed, tz="UTC")


@pytest.mark.parametrize(
    ("units", "scale"),
    [(0, 10), (1, 10), (10**10, 10), (-5, 10), (123_400, 3), (7, 0), (-(10**27) - 1, 10)],
)
def test_money_text_is_how_render_json_writes_the_decimal(units: int, scale: int) -> None:
    assert money_text(units, scale) == render_json(Decimal(f"{units}E-{scale}"))


def test_decimal_units_reads_every_word() -> None:
    values = [Decimal(v) for v in ("0", "1.5", "-0.0000000001", "123456789.0123456789")]
    values += [Decimal(2**80) / 10**10, Decimal(-(2**90)) / 10**10, Decimal("-1")]
    column = pa.chunked_array(
        [pa.array(values[:3], pa.decimal128(38, 10)), pa.array(values, pa.decimal128(38, 10))[2:]]
    )
    units, scale = decimal_units(column)
    assert scale == 10
    assert [Decimal(f"{u}E-10") for u in units] == values[:3] + values[2:]


def test_ascii_json_escapes_as_render_json() -> None:
    text = "".join(chr(c) for c in range(0x20, 0x250)) + '\x7f\U0001f600\u2028 \\ " \t\n\x01'
    doc = {"k\u00e9y": [text, "plain"], "n": 1}
    assert ascii_json(orjson.dumps(doc, option=orjson.OPT_INDENT_2)) == render_json(doc).encode()
