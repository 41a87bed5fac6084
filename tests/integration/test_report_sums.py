"""The report sums' order key: a slot written as text (``counted._SLOT_TEXT``) sorts in
ClickHouse as the (file, offset) tuple does, and its least is the least tuple's."""

from __future__ import annotations

import itertools

import pytest

from ingestor.clickhouse.engine import ClickHouse, quote_string
from ingestor.report.counted import _SLOT_TEXT

pytestmark = pytest.mark.integration

FILES = ["/a", "/a/b", "/a b", "/a-b", "/ab", "/a\u00e9", "/a\U0001f600", "/a/", ""]
OFFSETS = [0, 1, 9, 10, 15, 16, 255, 256, 2**32, 2**63, 2**64 - 1]


def test_slot_text_sorts_as_the_slot(clickhouse: ClickHouse) -> None:
    slots = ", ".join(
        f"({quote_string(f)}, toUInt64({o}))" for f, o in itertools.product(FILES, OFFSETS)
    )
    rows = f"SELECT arrayJoin([{slots}]) AS first"
    by_tuple = clickhouse.query(f"SELECT first.1, first.2 FROM ({rows}) ORDER BY first")
    by_text = clickhouse.query(f"SELECT first.1, first.2 FROM ({rows}) ORDER BY {_SLOT_TEXT}")
    assert by_text == by_tuple
    least = clickhouse.query(
        f"SELECT min(first).1 = splitByChar('\\0', min({_SLOT_TEXT}))[1] FROM ({rows})"
    )
    assert least == [(1,)]
