"""``shared_clickhouse``: one chdb directory that several worker processes write, through
``ingestor.local.chdb_share`` (chdb admits one process per directory). Pulled into conftest."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestor.local.chdb_share import KEY_ENV


@pytest.fixture
def shared_clickhouse(tmp_path: Path) -> Iterator[str]:
    """``chdb+tcp://…``: one chdb directory that several worker processes write."""
    key = uuid.uuid4().hex
    owner = subprocess.Popen(
        [sys.executable, "-m", "ingestor.local.chdb_share", str(tmp_path / "chdb")],
        env={**os.environ, KEY_ENV: key},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().split()  # "listening host:port"
        assert line and line[0] == "listening", line
        yield f"chdb+tcp://:{key}@{line[1]}/ingestor"
    finally:
        owner.kill()
        owner.wait()
