"""``local/broker.py``: the broker's address published for SDK clients, and a disk too full to
write it (a CI fault run's ``up`` ended there after restarting its broker)."""

from __future__ import annotations

import errno
import io
from pathlib import Path
from typing import Any

import pytest

from ingestor.local.broker import Broker
from ingestor.sdk import BOOTSTRAP_FILE


class FullDisk:
    """``Path.write_text`` while ``full``: as a filled filesystem, a file begun and no room."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        real = Path.write_text

        def write_text(path: Path, data: str, *args: Any, **kwargs: Any) -> int:
            if not self.full:
                return real(path, data, *args, **kwargs)
            real(path, data[:3])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(Path, "write_text", write_text)


def test_the_address_is_published_and_taken_back(tmp_path: Path) -> None:
    broker = Broker(None, "127.0.0.1:9092")
    assert broker.publish(tmp_path) is None
    assert (tmp_path / BOOTSTRAP_FILE).read_text() == "127.0.0.1:9092\n"
    broker.unpublish()
    assert not (tmp_path / BOOTSTRAP_FILE).exists()


def test_a_full_disk_leaves_the_address_pending_and_the_old_one_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Broker(None, "127.0.0.1:1111").publish(tmp_path)  # the broker before the restart
    disk = FullDisk(monkeypatch)
    broker = Broker(None, "127.0.0.1:2222")
    error = broker.publish(tmp_path)
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert broker.pending == tmp_path
    # Nothing half-written: the old address stands whole and no temporary file is left.
    assert [p.name for p in tmp_path.iterdir()] == [BOOTSTRAP_FILE]
    assert (tmp_path / BOOTSTRAP_FILE).read_text() == "127.0.0.1:1111\n"
    assert isinstance(broker.publish_pending(), OSError)  # still full: still pending
    assert broker.pending == tmp_path

    disk.full = False
    assert broker.publish_pending() is None
    assert broker.pending is None
    assert (tmp_path / BOOTSTRAP_FILE).read_text() == "127.0.0.1:2222\n"
    assert broker.publish_pending() is None  # nothing pending: nothing written
    broker.unpublish()
    assert not (tmp_path / BOOTSTRAP_FILE).exists()


def test_up_says_once_and_publishes_when_the_disk_has_room_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestor.cli.display import Display
    from ingestor.cli.up_keeper import RunRecord
    from ingestor.cli.up_supervise import Supervisor
    from ingestor.settings import Settings

    out = io.StringIO()
    broker = Broker(None, "127.0.0.1:2222")
    supervisor = Supervisor(
        Settings(_env_file=None, data_dir=tmp_path),
        broker,
        [],
        once=True,
        run=RunRecord("up"),
        display=Display(out, live=False),
    )
    disk = FullDisk(monkeypatch)
    supervisor._publish(broker.publish(tmp_path))  # as after a broker restart
    for _ in range(3):  # the loop's ticks
        supervisor._publish_pending()
    assert out.getvalue().count("could not publish the broker's address") == 1
    assert not (tmp_path / BOOTSTRAP_FILE).exists()
    disk.full = False
    supervisor._publish_pending()
    assert (tmp_path / BOOTSTRAP_FILE).read_text() == "127.0.0.1:2222\n"
    assert broker.pending is None and not supervisor.publish_failed
