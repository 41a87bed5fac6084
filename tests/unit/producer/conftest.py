"""Fixtures for the watcher's unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from watch_helpers import FakeSender


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    root = tmp_path / "claude" / "projects"
    root.mkdir(parents=True)
    return root
