"""Registers the ``parity`` marker: tests that run the real ccusage binary (skipped without it)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "parity: compares our reports with the real ccusage binary ($INGESTOR_CCUSAGE_BIN)",
    )
