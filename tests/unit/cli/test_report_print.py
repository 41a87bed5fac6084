"""``ingestor report --json`` prints the worker's bytes as ``print`` would print their text."""

from __future__ import annotations

import io
import sys

import pytest

from ingestor.cli.report import _print_bytes

JSON = b'{\n  "daily": [],\n  "totals": {"cost": 0.5}\n}'


def test_after_what_was_printed_before(capsys: pytest.CaptureFixture[str]) -> None:
    print("first")
    _print_bytes(JSON)
    print("last")
    assert capsys.readouterr().out == f"first\n{JSON.decode()}\nlast\n"


def test_through_a_buffered_text_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")  # holds text until flushed
    monkeypatch.setattr(sys, "stdout", stdout)
    print("first")
    _print_bytes(JSON)
    assert raw.getvalue() == b"first\n" + JSON + b"\n"


def test_to_a_text_only_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    _print_bytes(JSON)
    assert stdout.getvalue() == JSON.decode() + "\n"
