"""``ingestor up``, the main job: a whole-process-tree kill and a restart lose and double nothing.

The embedded broker keeps everything in memory, so the restart begins with an empty broker and
must resume from what ClickHouse durably holds (ARCHITECTURE.md, "Whole-tree kill").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline import child_pid, daily_totals, report_totals, session_totals, stack_env, wait_for

from ingestor.cli.report import USUAL_KINDS, usual_requests
from ingestor.clickhouse.engine import open_clickhouse
from ingestor.clickhouse.winners import winners_ready
from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.local.stack import worker_stats
from ingestor.local.tansu import tansu_binary
from ingestor.plain_settings import ClickHouseTarget
from ingestor.report import ReportRequest, build
from ingestor.report.build import build_json
from ingestor.report.counted import line_entries
from ingestor.report.entries import ENTRY_SQL, entries_from_columns
from ingestor.usage.prices import CostMode

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    try:
        tansu_binary()
    except Exception as exc:  # noqa: BLE001 - any reason there is no broker binary
        pytest.skip(f"no embedded broker: {exc}")
    yield stack_env(
        tmp_path / "data",
        batch_max_rows="1000",
        batch_max_age_s="0.3",
        broker_session_timeout_s="6",
    )


def _up(env: dict[str, str], corpus: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = open(Path(env["INGESTOR_DATA_DIR"]).parent / "up.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "ingestor.cli.main", "up", str(corpus / "projects"), *extra],
        env=env,
        cwd=corpus.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the test kills the whole tree
    )


def _stored(env: dict[str, str]) -> int:
    stats = worker_stats("127.0.0.1", env["INGESTOR_WEB_PORT"], timeout_s=5)
    return int(stats.get("counts", {}).get("rows_stored", 0))


def test_up_survives_a_whole_tree_kill(env: dict[str, str], tmp_path: Path) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=15_000, seed=21)
    reference = Reference.load(corpus)

    first = _up(env, corpus)
    try:
        wait_for(lambda: _stored(env) > 3000, timeout_s=180, what="the first run to store rows")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # up, watcher, worker; Tansu dies with its parent
        first.wait()

    second = _up(env, corpus, "--once")
    assert second.wait(timeout=300) == 0
    # Before the engine is opened again: its end kept the usual reports' answers.
    printed = {kind: _report_without_the_engine(env, corpus, kind) for kind in USUAL_KINDS}

    target = ClickHouseTarget(
        kind="chdb", database="ingestor", path=Path(env["INGESTOR_DATA_DIR"]) / "clickhouse"
    )
    with open_clickhouse(target) as ch:
        built = {kind: build_json(ch, r) + b"\n" for kind, r in usual_requests().items()}
        assert printed == built
        assert report_totals(build(ch, ReportRequest("daily"))) == daily_totals(reference)
        assert line_entries(ch, mode=CostMode.AUTO) == entries_from_columns(
            ch.query_columns(ENTRY_SQL), mode=CostMode.AUTO
        )
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        [(dead,)] = ch.query("SELECT count() FROM dead_letters FINAL")
        assert (stored, dead) == (reference.accounting.valid, reference.accounting.invalid)
        # The session summaries written from the Faust table (re-seeded after the broker lost
        # its memory) are exact as well.
        summaries = {
            row[0]: tuple(row[1:])
            for row in ch.query(
                "SELECT session_id, input_tokens, output_tokens, cache_creation_tokens, "
                "cache_read_tokens, cost_usd, messages FROM session_summaries FINAL "
                "WHERE messages > 0"
            )
        }
    assert summaries == session_totals(reference)


FAULTS = Path(__file__).parent / "faults"  # sitecustomize.py: FAULT_KILL_BEFORE=table:n


def _stored_and_dead(env: dict[str, str]) -> tuple[int, int]:
    target = ClickHouseTarget(
        kind="chdb", database="ingestor", path=Path(env["INGESTOR_DATA_DIR"]) / "clickhouse"
    )
    with open_clickhouse(target) as ch:
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        [(dead,)] = ch.query("SELECT count() FROM dead_letters FINAL")
    return int(stored), int(dead)


def test_dead_letters_survive_whole_tree_kills_between_inserts(
    env: dict[str, str], tmp_path: Path
) -> None:
    # Many bad lines; a kill lands between the inserts of one batch (lines stored, dead letters
    # not; both stored, positions not), then during the resume after it.
    corpus = tmp_path / "claude"
    generate(corpus, lines=4000, seed=5, odd_rate=0.03)
    reference = Reference.load(corpus)
    assert reference.accounting.invalid > 50
    faults = os.pathsep.join([str(FAULTS), *filter(None, [env.get("PYTHONPATH")])])
    points = ("dead_letters:2", "counted_usage:2", "file_positions:2", "transcript_lines:2")
    for point in (*points, "dead_letters:1"):
        faulty = {**env, "PYTHONPATH": faults, "FAULT_KILL_BEFORE": point}
        status = _up(faulty, corpus, "--once").wait(timeout=300)
        # Killed at the fault, or done before the run reached it.
        assert status in (-signal.SIGKILL, 0), (point, status)

    assert _up(env, corpus, "--once").wait(timeout=300) == 0
    assert _stored_and_dead(env) == (reference.accounting.valid, reference.accounting.invalid)
    _winners_exact(env)


def _winners_exact(env: dict[str, str]) -> None:
    """The winners kept at write time are the rule run over everything stored."""
    target = ClickHouseTarget(
        kind="chdb", database="ingestor", path=Path(env["INGESTOR_DATA_DIR"]) / "clickhouse"
    )
    with open_clickhouse(target) as ch:
        assert winners_ready(ch)
        oracle = entries_from_columns(ch.query_columns(ENTRY_SQL), mode=CostMode.AUTO)
        assert line_entries(ch, mode=CostMode.AUTO) == oracle


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _exact(env: dict[str, str], reference: Reference) -> None:
    assert _stored_and_dead(env) == (reference.accounting.valid, reference.accounting.invalid)


def test_up_restarts_a_worker_or_watcher_killed_alone(env: dict[str, str], tmp_path: Path) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=6000, seed=8, odd_rate=0.01)
    reference = Reference.load(corpus)
    env = {**env, "INGESTOR_RESTART_BACKOFF_S": "0.2"}
    up = _up(env, corpus, "--once")
    try:
        wait_for(lambda: _stored(env) > 500, timeout_s=120, what="rows stored")
        os.kill(child_pid(up.pid, "worker"), signal.SIGKILL)
        os.kill(child_pid(up.pid, "watch"), signal.SIGKILL)
        assert up.wait(timeout=300) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    _exact(env, reference)


def test_up_stops_within_five_seconds_of_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    import time

    corpus = tmp_path / "claude"
    generate(corpus, lines=3000, seed=9, odd_rate=0.01)
    reference = Reference.load(corpus)
    up = _up(env, corpus)  # follows: only the signal ends it
    try:
        wait_for(lambda: _stored(env) > 0, timeout_s=120, what="rows stored")
        child_pid(up.pid, "watch")
        _report_from_the_worker(env, corpus)
        began = time.monotonic()
        up.send_signal(signal.SIGTERM)
        status = up.wait(timeout=60)
        took = time.monotonic() - began
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert (status, took < 5.0) == (0, True), took
    wait_for(lambda: not _group_alive(up.pid), timeout_s=5, what="the whole tree to be gone")
    # Stopped by a signal, it exits at once: no report answers built to keep (`up --once` does).
    assert not list((Path(env["INGESTOR_DATA_DIR"]) / "answers").glob("*"))
    # The rerun finds the embedded ClickHouse free and finishes the job exactly.
    assert _up(env, corpus, "--once").wait(timeout=300) == 0
    _exact(env, reference)


def _report_without_the_engine(env: dict[str, str], corpus: Path, kind: str) -> bytes:
    """``ingestor report KIND --json`` with no ``up`` running, answered from what ``up`` kept as
    it stopped: the engine is not loaded."""
    code = (
        "import sys\n"
        "from ingestor.cli.main import main\n"
        f"sys.argv = ['ingestor', 'report', {kind!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "assert 'chdb' not in sys.modules, 'the CLI loaded the engine'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=corpus.parent, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _report_from_the_worker(env: dict[str, str], corpus: Path) -> None:
    """While `up` holds the data dir, `ingestor report` asks its worker without loading the
    engine it could not open anyway."""
    code = (
        "import sys\n"
        "from ingestor.cli.main import main\n"
        "sys.argv = ['ingestor', 'report', 'daily', '--json', '-z', 'UTC']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "assert 'chdb' not in sys.modules, 'the CLI loaded the engine'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=corpus.parent, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "daily" in json.loads(done.stdout)


def test_worker_restarted_after_exit_75_drains_the_rest(
    env: dict[str, str], tmp_path: Path
) -> None:
    # ClickHouse fails the first worker's first insert for good: it exits 75 with nothing
    # committed, and `up` restarts it onto a topic full of records and a group without a
    # committed offset (Faust's skipped-records case). The restarted worker must drain the rest
    # without a loop of in-place restarts.

    corpus = tmp_path / "claude"
    generate(corpus, lines=20_000, seed=9, odd_rate=0.01)
    reference = Reference.load(corpus)
    fired = tmp_path / "fault-fired"
    faulty = {
        **env,
        "PYTHONPATH": os.pathsep.join([str(FAULTS), *filter(None, [env.get("PYTHONPATH")])]),
        "FAULT_FAIL_INSERTS": "transcript_lines:1",
        "FAULT_FIRED": str(fired),
        "INGESTOR_INSERT_RETRIES": "1",
        "INGESTOR_INSERT_BACKOFF_S": "0.1",
        "INGESTOR_RESTART_BACKOFF_S": "0.2",
        # Nothing is committed by age before the restarted worker sees the hole.
        "INGESTOR_BATCH_MAX_AGE_S": "5",
    }
    assert _up(faulty, corpus, "--once").wait(timeout=300) == 0
    assert fired.exists()
    log = (Path(env["INGESTOR_DATA_DIR"]) / "logs" / "worker.log").read_text()
    assert "exiting for re-delivery" in log
    # One in-place restart may be needed to re-read a hole, and on a loaded machine the stall
    # watchdog may add one or two; the bug was a loop of them (one envelope every 20-50 s).
    holes = sum(
        log.count(sign)
        for sign in ("never reached the agent", "below its high-watermark", "delivered nothing")
    )
    assert holes <= 3, (holes, log[-3000:])  # counted, not timed: speed lives in `make bench`
    _exact(env, reference)


def test_unwritable_data_dir_is_retried_until_writable(env: dict[str, str], tmp_path: Path) -> None:
    # Tests run as root, where chmod stops no write: the fault makes inserts and checkpoint
    # writes fail with EACCES while a flag file exists.
    import time

    corpus = tmp_path / "claude"
    generate(corpus, lines=20_000, seed=11, odd_rate=0.01)
    reference = Reference.load(corpus)
    flag = tmp_path / "read-only"
    faulty = {
        **env,
        "PYTHONPATH": os.pathsep.join([str(FAULTS), *filter(None, [env.get("PYTHONPATH")])]),
        "FAULT_READONLY_WHILE": str(flag),
        "INGESTOR_INSERT_RETRIES": "2",
        "INGESTOR_INSERT_BACKOFF_S": "0.2",
        "INGESTOR_RESTART_BACKOFF_S": "0.5",
    }
    up = _up(faulty, corpus, "--once")
    try:
        wait_for(lambda: _stored(env) > 1000, timeout_s=120, what="rows stored")
        flag.touch()
        time.sleep(8)
        assert up.poll() is None, "up gave up while the data dir was unwritable"
        flag.unlink()
        assert up.wait(timeout=300) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    log = (Path(env["INGESTOR_DATA_DIR"]) / "logs" / "worker.log").read_text()
    assert "Permission denied" in log  # the fault did hit the worker
    _exact(env, reference)


def test_a_partition_faust_stops_fetching_is_fetched_again(
    env: dict[str, str], tmp_path: Path
) -> None:
    # Faust takes a partition out of its fetch while the stream's buffer is full and puts it
    # back on the buffer's drain callback. With that callback lost the partition is never
    # fetched again, and its fetch high-watermark stops with it: the worker looked caught up
    # with records unread. The watchdog must see the broker's end offsets and fetch it again.
    corpus = tmp_path / "claude"
    generate(corpus, lines=20_000, seed=11)
    reference = Reference.load(corpus)
    faulty = {
        **env,
        "PYTHONPATH": os.pathsep.join([str(FAULTS), *filter(None, [env.get("PYTHONPATH")])]),
        "FAULT_LOSE_BUFFER_DROPS": "2",
        "INGESTOR_WORKER_STREAM_BUFFER": "16",
    }
    assert _up(faulty, corpus, "--once").wait(timeout=600) == 0
    log = (Path(env["INGESTOR_DATA_DIR"]) / "logs" / "worker.log").read_text()
    assert "FAULT: lost the buffer drop" in log  # the fault happened
    assert "no longer fetches it; fetching it again" in log, log[-3000:]
    _exact(env, reference)
