"""Process life: the import, ``fork()``, and interpreter exit."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sdk_fakes import FileTransport

from ingestor.sdk import Tracker

HERE = Path(__file__).parent


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def read(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_importing_the_sdk_loads_no_faust_chdb_pydantic_aiokafka_or_asyncio() -> None:
    result = run_python(
        """
        import sys
        import ingestor.sdk
        heavy = ("faust", "chdb", "pydantic", "aiokafka", "asyncio", "ingestor.settings")
        print([m for m in heavy if m in sys.modules])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_forked_child_sends_its_own_events_and_never_the_parents(tmp_path: Path) -> None:
    out, down = tmp_path / "sent.jsonl", tmp_path / "down"
    down.write_text(str(os.getpid()))  # the parent's broker is away: its event stays queued
    tracker = Tracker(
        project_id="p", linger_s=0.01, backoff_min_s=0.01, backoff_max_s=0.05,
        transport=functools.partial(FileTransport, str(out), str(down)),
    )  # fmt: skip
    parent_id = tracker.track({"event_type": "error", "error_type": "parent"})
    time.sleep(0.1)  # the parent's sender holds it, retrying
    pid = os.fork()
    if pid == 0:  # the child: a fresh queue, counters and sender
        code = 1
        try:
            tracker.track({"event_type": "error", "error_type": "child"})
            fresh = tracker.stats().queued == 1
            code = 0 if tracker.close(5) and fresh else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    down.unlink()
    assert tracker.flush(5)
    records = read(out)
    assert sorted((r["pid"], r["error_type"]) for r in records) == sorted(
        [(os.getpid(), "parent"), (pid, "child")]
    )
    assert next(r["event_id"] for r in records if r["error_type"] == "parent") == parent_id
    assert len({r["event_id"] for r in records}) == 2
    tracker.close(1)


def test_events_are_flushed_when_the_interpreter_exits(tmp_path: Path) -> None:
    out = tmp_path / "sent.jsonl"
    result = run_python(
        f"""
        import functools
        from sdk_fakes import FileTransport
        from ingestor.sdk import Tracker
        tracker = Tracker(project_id="p", linger_s=60,
                          transport=functools.partial(FileTransport, {str(out)!r}))
        for i in range(5):
            tracker.track({{"event_type": "error", "error_type": f"e{{i}}"}})
        """
    )
    assert result.returncode == 0, result.stderr
    assert sorted(r["error_type"] for r in read(out)) == [f"e{i}" for i in range(5)]


def test_exit_is_bounded_when_the_broker_is_away() -> None:
    started = time.monotonic()
    result = run_python(
        """
        from ingestor.sdk import Tracker
        tracker = Tracker("127.0.0.1:9", project_id="p", exit_timeout_s=0.5)
        tracker.track({"event_type": "error", "error_type": "lost"})
        """
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15  # interpreter start + aiokafka import + 0.5 s
