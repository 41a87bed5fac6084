from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingestor.errors import ConfigError
from ingestor.producer.checkpoint import Checkpoint, FilePosition


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "producer" / "checkpoint.json"
    cp = Checkpoint(path)
    cp.set("/a.jsonl", FilePosition(generation=2, inode=7, offset=99, first_ts="2025-01-01T00:00Z"))
    assert cp.dirty
    cp.save()
    assert not cp.dirty
    loaded = Checkpoint.load(path)
    assert loaded.get("/a.jsonl") == FilePosition(2, 7, 99, "2025-01-01T00:00Z")
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_each_save_writes_every_position_as_it_is_now(tmp_path: Path) -> None:
    # A save encodes only the positions changed since the last one; what it writes is all of
    # them, each as it is now, whether loaded, changed before or changed since.
    path = tmp_path / "cp.json"
    cp = Checkpoint(path, {"/old.jsonl": FilePosition(1, 3, 10), "/kept.jsonl": FilePosition()})
    cp.set("/a.jsonl", FilePosition(0, 7, 5, "2025-01-01T00:00Z"))
    cp.save()
    cp.set("/a.jsonl", FilePosition(0, 7, 50, "2025-01-01T00:00Z"))
    cp.set("/old.jsonl", FilePosition(2, 4, 0))
    cp.set('/"odd"\\é.jsonl', FilePosition(gone=True))
    cp.save()
    cp.set("/a.jsonl", FilePosition(0, 7, 51, "2025-01-01T00:00Z"))  # not saved
    loaded = Checkpoint.load(path)
    assert {p: loaded.get(p) for p in loaded} == {
        "/a.jsonl": FilePosition(0, 7, 50, "2025-01-01T00:00Z"),
        "/old.jsonl": FilePosition(2, 4, 0),
        "/kept.jsonl": FilePosition(),
        '/"odd"\\é.jsonl': FilePosition(gone=True),
    }


def test_missing_file_is_an_empty_checkpoint(tmp_path: Path) -> None:
    assert len(Checkpoint.load(tmp_path / "none.json")) == 0


def test_unreadable_file_is_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(b'{"version": 1, "files": {"/a": {"offset": 1}}}')
    with pytest.raises(ConfigError, match="unreadable"):
        Checkpoint.load(path)
    path.write_bytes(b"{not json")
    with pytest.raises(ConfigError):
        Checkpoint.load(path)


def test_a_failed_write_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cp.json"
    cp = Checkpoint(path)
    cp.set("/a", FilePosition(offset=10, inode=1))
    cp.save()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    cp.set("/a", FilePosition(offset=20, inode=1))
    with pytest.raises(OSError):
        cp.save()
    assert cp.dirty  # still to be saved
    assert Checkpoint.load(path).get("/a") == FilePosition(offset=10, inode=1)


def test_save_without_changes_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    cp = Checkpoint(path)
    cp.set("/a", FilePosition(offset=1))
    cp.save()
    path.unlink()
    cp.set("/a", FilePosition(offset=1))  # same value: not a change
    cp.save()
    assert not path.exists()


def test_override_from_clickhouse_positions() -> None:
    cp = Checkpoint(
        None,
        {
            "/held": FilePosition(generation=1, inode=11, offset=500, first_ts="T1"),
            "/unknown": FilePosition(generation=0, inode=12, offset=300, first_ts="T2"),
            "/older": FilePosition(generation=0, inode=13, offset=300),
        },
    )
    cp.override(
        {
            ("/held", 0): 999,  # an old generation: irrelevant
            ("/held", 1): 120,
            ("/older", 1): 40,
            ("/older", 2): 80,  # ClickHouse saw a later generation than the checkpoint
            ("/new", 0): 10,
            ("/new", 3): 70,
        }
    )
    assert cp.get("/held") == FilePosition(generation=1, inode=11, offset=120, first_ts="T1")
    assert cp.get("/unknown") == FilePosition(generation=0, inode=12, offset=0, first_ts="T2")
    assert cp.get("/older") == FilePosition(generation=2, inode=None, offset=80)
    assert cp.get("/new") == FilePosition(generation=3, inode=None, offset=70)
    assert cp.dirty
