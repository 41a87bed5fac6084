"""The room an insert into chdb waits for (``clickhouse/disk.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from ingestor.clickhouse import disk
from ingestor.plain_settings import ClickHouseTarget

MB = 1 << 20


def _statvfs(free_mb: list[float], total_mb: int = 1000) -> object:
    """A statvfs whose free space is the next of ``free_mb`` on each call (the last one stays)."""

    def statvfs(path: object) -> SimpleNamespace:
        free = free_mb.pop(0) if len(free_mb) > 1 else free_mb[0]
        return SimpleNamespace(f_frsize=4096, f_blocks=total_mb * MB // 4096,
                               f_bavail=int(free * MB) // 4096)  # fmt: skip

    return statvfs


def test_the_reserve_is_five_percent_of_the_disk_at_most_a_gigabyte() -> None:
    assert disk.default_reserve(256 * MB) == int(12.8 * MB)
    assert disk.default_reserve(500 * 1024 * MB) == 1024 * MB


def test_an_insert_waits_while_the_disk_is_under_its_reserve(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # 1000 MB disk: 50 MB kept free. Full, then 10 MB, then room again.
    monkeypatch.setattr(os, "statvfs", _statvfs([0, 10, 60]))
    slept: list[float] = []
    waited = disk.wait_for_room(Path("/data"), sleep=slept.append, poll_s=0.5)
    assert (waited, slept) == (1.0, [0.5, 0.5])
    assert "has 0.0 MB free, under the 50.0 MB kept free" in caplog.text
    assert "room again after 1.0 s" in caplog.text


def test_with_room_an_insert_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "statvfs", _statvfs([51]))
    assert disk.wait_for_room(Path("/data"), sleep=pytest.fail) == 0.0


def test_the_reserve_is_a_setting_and_zero_turns_the_wait_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "statvfs", _statvfs([5]))
    assert disk.room(Path("/data"), reserve_mb=4).enough
    assert not disk.room(Path("/data"), reserve_mb=6).enough
    chdb = ClickHouseTarget(kind="chdb", database="ingestor", path=Path("/data"))
    assert disk.wait_for_room_under(chdb, 0) == 0.0


def test_a_server_is_never_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "statvfs", _statvfs([0]))
    server = ClickHouseTarget.parse("clickhouse://u:p@db:9000/x", default_path=Path("/data"))
    assert disk.wait_for_room_under(server, None) == 0.0
