"""The command line a newcomer meets (issue 8), end to end: ``python -m ingestor.cli.main``.

Each mistake is one line on stderr naming the path, pid or port and the fix, a non-zero exit and
no traceback; ``--help`` says where data goes; ``up`` stops with a summary saying how to resume.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline import stack_env, wait_for

from ingestor.corpus.generate import generate
from ingestor.local.pidlock import LOCK_NAME
from ingestor.local.tansu import tansu_binary

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**stack_env(tmp_path / "data"), "COLUMNS": "80"}


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    return line


def test_help_says_what_each_command_does_and_where_data_goes(env: dict[str, str]) -> None:
    up = cli(env, "up", "--help").stdout
    for words in ("INGESTOR_DATA_DIR", "~/.local/share/ingestor", "INGESTOR_WEB_PORT", "6066"):
        assert words in up
    assert "Ctrl-C" in up and "again to resume" in " ".join(up.split())
    worker = " ".join(cli(env, "worker", "--help").stdout.split())
    assert "--loglevel" in worker and "default: warning" in worker
    assert "INGESTOR_DATA_DIR" in worker
    corpus = " ".join(cli(env, "corpus", "--help").stdout.split())
    assert "(default 10000)" in corpus and "nothing in the data dir" in corpus
    report = " ".join(cli(env, "report", "--help").stdout.split())
    assert "INGESTOR_DATA_DIR" in report and "system's time zone" in report
    assert "INGESTOR_DATA_DIR" in " ".join(cli(env, "--help").stdout.split())


def test_report_without_data_says_how_to_get_some_and_creates_nothing(
    env: dict[str, str],
) -> None:
    line = one_line_error(cli(env, "report", "daily"))
    assert "no data yet" in line and "ingestor up" in line
    assert not Path(env["INGESTOR_DATA_DIR"]).exists()
    assert "--since" in one_line_error(cli(env, "report", "daily", "--since", "2030x"))


def test_unwritable_data_dir_is_one_line_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")  # tests run as root: a regular file is what stops mkdir
    data = tmp_path / "file" / "data"
    line = one_line_error(cli({**env, "INGESTOR_DATA_DIR": str(data)}, "up", "--once"))
    assert str(data) in line and "INGESTOR_DATA_DIR" in line


def test_missing_watch_dir_with_once_names_it_and_its_typo(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "projects").mkdir()
    line = one_line_error(cli(env, "up", "--once", str(tmp_path / "projcts")))
    assert f"{tmp_path / 'projcts'} does not exist" in line
    assert f"did you mean {tmp_path / 'projects'}?" in line


def test_port_in_use_names_the_port_and_the_setting(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "projects").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        taken_env = {**env, "INGESTOR_WEB_PORT": str(port)}
        line = one_line_error(cli(taken_env, "up", "--once", str(tmp_path / "projects")))
    assert f"port {port} on 127.0.0.1 is in use" in line and "INGESTOR_WEB_PORT" in line


@pytest.fixture
def broker() -> Iterator[None]:
    try:
        tansu_binary()
    except Exception as exc:  # noqa: BLE001 - any reason there is no broker binary
        pytest.skip(f"no embedded broker: {exc}")
    yield


@pytest.mark.slow
def test_second_up_names_the_first_and_a_stop_says_how_to_resume(
    env: dict[str, str], tmp_path: Path, broker: None
) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=300, seed=3, odd_rate=0.05)
    later = tmp_path / "later"  # watched once created
    out = tmp_path / "up.out"
    with out.open("w") as sink:
        first = subprocess.Popen(
            [sys.executable, "-m", "ingestor.cli.main", "up", str(corpus / "projects"), str(later)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        lock = Path(env["INGESTOR_DATA_DIR"]) / LOCK_NAME
        wait_for(lambda: lock.exists() and lock.read_text().strip(), timeout_s=60, what="lock")
        second = cli(env, "up", "--once", str(corpus / "projects"))
        line = one_line_error(second)
        data = env["INGESTOR_DATA_DIR"]
        assert f"another `ingestor up` is using {data} (pid {first.pid})" in line
        wait_for(lambda: "caught up" in out.read_text(), timeout_s=120, what="caught up")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    text = out.read_text()
    assert "it will be watched when it is created" in text
    assert "lines behind" in text or "caught up" in text
    assert "this run: read 300 lines" in text
    assert "dead letters by reason" in text
    assert f"data in {data}" in text
    assert "run `ingestor up` again to resume" in text
    assert "Traceback" not in text
    assert lock.read_text() == ""  # released as it stopped
