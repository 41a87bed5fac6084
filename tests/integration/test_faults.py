"""The fault-injection suite (issue #11): random kills, broker restarts, ClickHouse refusing
inserts and a full disk while a corpus and SDK events go through ``ingestor up``; afterwards every
table and materialized view equals the truth, no row lost or doubled.

CI runs ``INGESTOR_FAULT_POINTS`` (10) fault points on a small corpus; ``make soak`` runs 50 on a
larger one. The seed is random unless ``INGESTOR_FAULT_SEED`` is set, and printed (``-s`` shows
the whole run; a failure message carries it and every fault injected).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos import (
    BATCH_MAX_ROWS,
    ENVELOPE_MAX,
    UNITS_EVENTS,
    BrokerUnderTest,
    Chaos,
    EmbeddedTansu,
    EventPump,
    check_exact,
    child_pid,
    rss_mb,
    tmpfs,
)
from pipeline import wait_for

from ingestor.local.tansu import tansu_binary
from ingestor.sdk import Tracker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

POINTS = int(os.environ.get("INGESTOR_FAULT_POINTS", "10"))
LINES = int(os.environ.get("INGESTOR_FAULT_LINES", "6000"))


def _seed() -> int:
    return int(os.environ.get("INGESTOR_FAULT_SEED", "0")) or random.SystemRandom().randrange(
        1, 1_000_000
    )


@pytest.fixture(params=["tansu"])
def broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    """The broker under test; real Apache Kafka joins this list with its own restart."""
    try:
        tansu_binary()
    except Exception as exc:  # noqa: BLE001 - any reason there is no broker binary
        pytest.skip(f"no embedded broker: {exc}")
    return EmbeddedTansu()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 256 MB tmpfs for the data dir where this process may mount one (root), so a full disk
    is a real ENOSPC; else None and the fault is injected (``FAULT_ENOSPC_WHILE``)."""
    path = tmp_path / "data"
    unmount = tmpfs(path, 256) if os.environ.get("INGESTOR_FAULT_TMPFS", "1") == "1" else None
    yield path if unmount else None
    if unmount:
        shutil.copytree(path / "logs", tmp_path / "logs", dirs_exist_ok=True)
        unmount()


def test_random_faults_leave_every_table_exact(
    broker: BrokerUnderTest, tmp_path: Path, small_disk: Path | None
) -> None:
    seed = _seed()
    chaos = Chaos(tmp_path, broker, seed, points=POINTS, lines=LINES, data_dir=small_disk)
    if only := os.environ.get("INGESTOR_FAULT_SCENARIOS"):
        chaos.scenarios = tuple(only.split(","))
    try:
        units, _ = chaos.run()
        with chaos.clickhouse() as ch:
            wrong = check_exact(ch, chaos.reference, units)
    except BaseException as exc:
        raise AssertionError("\n".join([f"seed {seed}: {exc!r}", *chaos.log])) from exc
    assert wrong == [], "\n".join([f"seed {seed}", *chaos.log, *wrong])
    # While ClickHouse refused inserts or the disk was full, consumption paused: the worker never
    # held more than the batch being inserted plus the next one (and one message's records).
    assert chaos.pending_max <= 2 * BATCH_MAX_ROWS + ENVELOPE_MAX, chaos.log


def _restarts(log: Path) -> list[float]:
    """The MB of each planned broker restart ``up`` logged."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [float(mb) for mb in re.findall(r"the broker holds (\d+) MB, all of it stored", text)]


def test_broker_over_its_memory_bound_is_restarted_when_caught_up(
    broker: BrokerUnderTest, tmp_path: Path
) -> None:
    # A low bound: the corpus arrives in bursts; after each, once all is stored, the broker's
    # memory is over the bound and `up` restarts it, so its RSS never stays above the bound
    # plus one burst. Events keep going in bursts of their own.
    if not broker.loses_memory:
        pytest.skip("only a memory-storage broker grows without bound")
    chaos = Chaos(tmp_path, broker, _seed(), points=0, lines=12_000, scenarios=())
    bound_mb = 24
    chaos.env["INGESTOR_TANSU_MAX_RSS_MB"] = str(bound_mb)
    log = tmp_path / "up.log"
    os.environ["INGESTOR_DATA_DIR"] = chaos.env["INGESTOR_DATA_DIR"]
    tracker = Tracker(
        project_id="chaos", user_id="u1", session_id="s1", linger_s=0.05, backoff_min_s=0.1,
        backoff_max_s=1.0, topic="ingestor.events",
    )  # fmt: skip
    pump = EventPump(tracker, per_s=50, paused=True)
    up = chaos.up = chaos.start_up()
    bursts, peaks = 4, []
    try:
        wait_for(lambda: chaos.stats().get("ready"), timeout_s=120, what="the worker ready")
        pump.start()
        per = -(-len(chaos.files) // bursts)
        for burst in range(bursts):
            before = len(_restarts(log))
            chaos.feed(per * (burst + 1))
            pump.resume()
            time.sleep(1.0)
            pump.pause()
            assert tracker.flush(60)
            chaos.quiet()
            peaks.append(rss_mb(child_pid(up.pid, "tansu")))
            if peaks[-1] > bound_mb:
                # Over the bound and caught up: `up` restarts the broker.
                wait_for(lambda: len(_restarts(log)) > before, timeout_s=60, what="a restart")  # noqa: B023
                chaos.quiet()
        pump.finish()
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        # --once: the watcher may not have read the last burst whole when the worker was quiet.
        up = chaos.up = chaos.start_up("--once")
        assert up.wait(timeout=300) == 0
    finally:
        pump.finish()
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        tracker.close(5)
        os.environ.pop("INGESTOR_DATA_DIR", None)
    restarts = _restarts(log)
    print(f"tansu RSS after each burst (MB): {peaks}; planned restarts at {restarts} MB")
    assert len(restarts) >= 2, (peaks, restarts)
    assert all(mb > bound_mb for mb in restarts)
    assert tracker.stats().sent == pump.units * UNITS_EVENTS
    # Nothing lost to the restarts: the last burst's files were stored before the stop.
    with chaos.clickhouse() as ch:
        assert check_exact(ch, chaos.reference, pump.units) == []
