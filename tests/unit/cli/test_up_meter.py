"""``up``'s meter across a broker restart (``cli/up_meter.py``, ``Meter``): ``--once`` must end; and
the watcher's turn to idle, which has ``--once`` look at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingestor.cli.up_meter import Meter
from ingestor.settings import Settings


def _watcher(path: Path, pid: int, envelopes: int) -> None:
    path.write_text(
        json.dumps({"pid": pid, "messages_sent": envelopes, "lines_read": envelopes, "idle": True})
    )


def _worker(run_id: str, messages: int) -> dict[str, Any]:
    return {"run_id": run_id, "counts": {"messages": messages}, "behind": 0}


def test_the_stopped_watchers_last_counts_are_not_awaited_from_the_new_broker(
    tmp_path: Path,
) -> None:
    stats = tmp_path / "watch-stats.json"
    meter = Meter(Settings(data_dir=tmp_path), stats)
    _watcher(stats, pid=1, envelopes=10)
    meter.worker = _worker("a", 10)
    assert meter.look(0.0, ask_worker=False)[1] == 10  # caught up
    # The old watcher sent 5 more envelopes after that look, reported them, and was stopped
    # with the broker they went to: the new broker will never deliver them.
    _watcher(stats, pid=1, envelopes=15)
    meter.new_broker()
    meter.worker = {}  # the new worker does not answer yet
    meter.look(0.5, ask_worker=False)  # the file is still the old watcher's
    _watcher(stats, pid=2, envelopes=3)
    meter.worker = _worker("b", 3)
    _, done = meter.look(1.0, ask_worker=False)
    assert done == 3  # everything sent to the new broker was handled


def test_a_watcher_stopped_with_every_byte_read_has_read_everything(tmp_path: Path) -> None:
    stats = tmp_path / "watch-stats.json"
    meter = Meter(Settings(data_dir=tmp_path), stats)
    assert not meter.watcher_read_everything()  # no report yet: nothing is known
    stats.write_text(json.dumps({"pid": 1, "bytes_done": 90, "bytes_total": 100}))
    assert not meter.watcher_read_everything()  # a backlog: a restart must come first
    stats.write_text(json.dumps({"pid": 1, "bytes_done": 100, "bytes_total": 100}))
    assert meter.watcher_read_everything()
    stats.write_text(json.dumps({"pid": 1, "bytes_done": 0, "bytes_total": 5, "idle": True}))
    assert meter.watcher_read_everything()  # its last pass found nothing more to read


def test_the_watchers_turn_to_idle_is_seen_once_between_looks(tmp_path: Path) -> None:
    stats = tmp_path / "watch-stats.json"
    meter = Meter(Settings(data_dir=tmp_path), stats)
    assert not meter.watcher_turned_idle()  # no stats yet
    stats.write_text(json.dumps({"pid": 1, "messages_sent": 2, "idle": False}))
    assert not meter.watcher_turned_idle()
    _watcher(stats, pid=1, envelopes=2)
    assert meter.watcher_turned_idle()
    meter.worker = _worker("a", 1)  # one envelope still to handle: not done
    assert meter.look(0.0, ask_worker=False)[1] is None
    assert not meter.watcher_turned_idle()  # that look saw it idle: the usual pace again
    stats.write_text(json.dumps({"pid": 1, "messages_sent": 3, "idle": False}))
    meter.look(0.25, ask_worker=False)
    _watcher(stats, pid=1, envelopes=3)
    assert meter.watcher_turned_idle()  # idle again after more lines
