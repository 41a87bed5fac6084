"""``up``'s checks before it starts (``cli/checks.py``) and the data dir's pid lock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ingestor.cli.checks import check_data_dir, check_port, check_watch_dirs
from ingestor.errors import ConfigError
from ingestor.local.pidlock import LOCK_NAME, DataDirInUse, PidLock


def test_data_dir_under_a_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"cannot create the data dir .*/file/data .*DATA_DIR"):
        check_data_dir(tmp_path / "file" / "data")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    with pytest.raises(ConfigError, match="a file is in the way"):
        check_data_dir(tmp_path / "data")


def test_data_dir_is_created(tmp_path: Path) -> None:
    check_data_dir(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()


def test_port_in_use_names_it_and_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"port {port} on 127.0.0.1 is in use.*WEB_PORT"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again


def test_missing_watch_dir_with_once_is_an_error_with_its_typo(tmp_path: Path) -> None:
    (tmp_path / "projects").mkdir()
    with pytest.raises(ConfigError, match=r"projcts does not exist \(did you mean .*/projects\?\)"):
        check_watch_dirs([tmp_path / "projcts"], once=True)
    with pytest.raises(ConfigError, match=r"nothing/at/all does not exist: check"):
        check_watch_dirs([tmp_path / "nothing" / "at" / "all"], once=True)


def test_missing_watch_dir_without_once_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    warnings = check_watch_dirs([tmp_path / "here", tmp_path / "later"], once=False)
    assert warnings == [
        f"warning: {tmp_path / 'later'} does not exist; it will be watched when it is created"
    ]


def test_pid_lock_names_the_holder_and_is_released(tmp_path: Path) -> None:
    with PidLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(DataDirInUse, match=rf"is using {tmp_path} \(pid {os.getpid()}\)"):
            PidLock(tmp_path).acquire()
    with PidLock(tmp_path):  # released: taken again
        pass


def test_pid_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    # A process that took the lock and was killed leaves its pid file behind.
    code = (
        "import os, sys; from pathlib import Path; from ingestor.local.pidlock import PidLock; "
        "PidLock(Path(sys.argv[1])).acquire(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert (tmp_path / LOCK_NAME).read_text().strip().isdigit()
    with PidLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"


def test_held_says_whether_a_live_up_holds_the_data_dir(tmp_path: Path) -> None:
    from ingestor.local.pidlock import held

    assert not held(tmp_path)  # no lock file
    with PidLock(tmp_path):
        assert held(tmp_path)
    assert not held(tmp_path)  # the file stays, the lock is gone
