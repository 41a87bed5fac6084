"""The pipeline on Apache Kafka itself (one KRaft broker): the commands as separate processes.

``ingestor topics create``, ``ingestor schema apply`` and ``ingestor watch --once`` run before the
worker exists, so the worker's consumer group starts with no committed offset on topics that
already hold every record: the situation in which faust-streaming 0.15 skips records (see
ARCHITECTURE.md, "Faust skipping records"); then a first worker exits 75 with nothing committed
and a second one joins the group it left. The totals must still equal the reference exactly; the
holes the worker caught are printed (`-s`) and recorded as a property.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline import Pipeline, session_totals

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.worker.exits import EXIT_STORAGE_FAILED

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULTS = Path(__file__).parent / "faults"  # sitecustomize.py: FAULT_FAIL_INSERTS=table:n
HOLE_MARKS = ("never reached the agent", "below its high-watermark")


def ingestor(p: Pipeline, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", *args],
        env=p.env,
        cwd=p.tmp,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.mark.parametrize(
    "broker",
    [
        "kafka",
        # The same on the embedded broker, for comparison: make soak.
        pytest.param(
            "tansu",
            marks=[
                pytest.mark.soak,
                pytest.mark.skipif(not os.environ.get("INGESTOR_SOAK"), reason="make soak"),
            ],
        ),
    ],
)
def test_corpus_through_a_fresh_group_is_exact(
    broker: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=6000, seed=41, odd_rate=0.01)
    reference = Reference.load(corpus)
    if broker == "kafka":
        bootstrap = request.getfixturevalue("kafka1").bootstrap
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
    p = Pipeline(bootstrap, tmp_path, f"chdb://{tmp_path / 'chdb'}", tansu=broker == "tansu")
    assert "created 4 topic(s)" in ingestor(p, "topics", "create")
    ingestor(p, "schema", "apply")
    ingestor(p, "watch", str(corpus / "projects"), "--once")

    # A first worker fails its first insert for good and exits 75 with nothing committed; the
    # next one joins a group that has fetched but committed nothing: where Faust skips records.
    faulty = {
        **p.env,
        "PYTHONPATH": os.pathsep.join([str(FAULTS), *filter(None, [p.env.get("PYTHONPATH")])]),
        "FAULT_FAIL_INSERTS": "transcript_lines:1",
        "FAULT_FIRED": str(tmp_path / "fault-fired"),
        "INGESTOR_BATCH_MAX_AGE_S": "5",  # nothing committed by age before the failure
        "INGESTOR_INSERT_RETRIES": "1",
        "INGESTOR_INSERT_BACKOFF_S": "0.1",
    }
    first = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "worker", *p.worker_args()],
        env=faulty,
        cwd=tmp_path,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert first.returncode == EXIT_STORAGE_FAILED, first.stderr[-2000:]

    p.start_worker()
    try:
        p.wait_stored(reference)
        live = p.get("/sessions/")
    finally:
        p.stop_worker()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    holes = sum(log.count(mark) for mark in HOLE_MARKS)
    record_property("faust_holes_seen", holes)  # what Faust's fault did on real Kafka
    print(f"\n{broker}, fresh group on full topics: {holes} Faust hole(s) caught")

    with p.clickhouse() as ch:
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        [(dead,)] = ch.query("SELECT count() FROM dead_letters FINAL")
        [(copies,)] = ch.query("SELECT count() FROM transcript_lines")
    assert (stored, dead) == (reference.accounting.valid, reference.accounting.invalid)
    assert copies >= stored
    assert live is not None
    from pipeline import live_session_totals

    assert live_session_totals(live) == session_totals(reference)
