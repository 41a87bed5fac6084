"""``local/stack.py``: stopping children within one grace, and a worker that does not answer."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from ingestor.local.stack import free_port, stop_processes, wait_ready, worker_stats


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_children_that_ignore_sigterm_are_killed_after_one_shared_grace() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    procs = [_python(stubborn), _python(stubborn), _python("import time; time.sleep(60)")]
    time.sleep(0.5)  # let the first two install their handler
    started = time.monotonic()
    stop_processes(procs, 0.5)
    assert time.monotonic() - started < 5  # one grace for all, not one each
    assert procs[0].returncode == procs[1].returncode == -signal.SIGKILL
    assert procs[2].returncode == -signal.SIGTERM


def test_stopping_what_already_exited_is_quiet() -> None:
    done = _python("pass")
    done.wait()
    stop_processes([done], 0.1)
    stop_processes([done], 0.1, sig=signal.SIGKILL)
    assert done.returncode == 0


def test_a_worker_that_does_not_answer_has_no_stats() -> None:
    assert worker_stats("127.0.0.1", free_port(), timeout_s=0.2) == {}


def test_waiting_for_readiness_ends_with_the_process_or_the_stop() -> None:
    port = free_port()
    gone = _python("pass")
    gone.wait()
    assert not wait_ready("127.0.0.1", port, gone, timeout_s=30, poll_s=0.01)
    alive = _python("import time; time.sleep(60)")
    try:
        stop = threading.Event()
        stop.set()
        assert not wait_ready("127.0.0.1", port, alive, timeout_s=30, poll_s=0.01, stop=stop)
        started = time.monotonic()
        assert not wait_ready("127.0.0.1", port, alive, timeout_s=0.3, poll_s=0.01)
        assert time.monotonic() - started < 5
    finally:
        stop_processes([alive], 1)
