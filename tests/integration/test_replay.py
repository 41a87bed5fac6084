"""``ingestor replay`` on the real broker and chdb: replaying twice, or replaying what the live
worker stored, changes no total in any table or view (``totals.snapshot``: counts and sums of
every table, materialized views' targets included); a replay restores lost rows; ``--from TIME``
replays exactly the messages the broker received since; on Apache Kafka, whose log is on disk,
a replay works across a broker restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pipeline import Pipeline, daily_totals, report_totals, wait_for
from totals import snapshot

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.local.kafka import KafkaCluster
from ingestor.report import ReportRequest, build
from ingestor.wire import encode_envelope

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _events() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    ts = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0).isoformat()
    events: list[dict[str, object]] = [
        {"event_id": f"e{i}", "event_type": "prompt_call", "project_id": "p", "user_id": "u1",
         "session_id": "s1", "timestamp": ts, "model": "m", "tokens_input": 10 + i,
         "tokens_output": 5, "cost_usd": 0.1, "latency_ms": 100 + i}
        for i in range(5)
    ] + [
        {"event_id": "t1", "event_type": "tool_call", "project_id": "p", "timestamp": ts,
         "tool_name": "search", "status": "error"},
        {"event_id": "bad", "event_type": "prompt_call", "project_id": "p"},  # dead letter
    ]  # fmt: skip
    ledger: list[dict[str, object]] = [
        {"request_id": "r1", "user_id": "u1", "provider_id": "pr", "model_id": "m",
         "created_at": ts, "vendor_cost": "0.00000250", "credits_deducted": 3,
         "margin_multiplier": "2.50", "gross_margin_usd": "0.00000375", "status": "success"},
    ]  # fmt: skip
    return events, ledger


def _produce(pipeline: Pipeline) -> int:
    """Events (one envelope twice, one event bare, a message that is no JSON) and a ledger entry;
    returns the messages sent."""
    events, ledger = _events()
    topics = pipeline.settings

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
        await producer.start()
        try:
            envelope = encode_envelope("event", events)
            for value in (envelope, envelope, orjson.dumps(events[0]), b"not json"):
                await producer.send_and_wait(topics.topic("events"), value, key=b"s1")
            await producer.send_and_wait(
                topics.topic("ledger"), encode_envelope("ledger", ledger), key=b"u1"
            )
        finally:
            await producer.stop()

    asyncio.run(produce())
    return 5


def _replay(pipeline: Pipeline, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "replay", *args],
        env=pipeline.env,
        cwd=pipeline.tmp,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _replayed(out: str) -> int:
    last = out.strip().splitlines()[-1]
    assert last.startswith("replayed "), out
    return int(last.split()[1].replace(",", ""))


def test_replay_changes_no_total_and_restores_what_was_lost(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=600, seed=5)
    reference = Reference.load(corpus)

    pipeline.start_worker()
    pipeline.send(corpus)
    pipeline.wait_stored(reference)
    transcript_messages = pipeline.stats()["counts"]["messages"]  # type: ignore[index]
    time.sleep(0.05)  # the broker stamps records in milliseconds: a time between the two
    between = datetime.now(UTC)
    time.sleep(0.05)
    sent = _produce(pipeline)
    wait_for(
        lambda: (
            (s := pipeline.stats())
            and s["counts"]["messages"] == transcript_messages + sent
            and s["pending_rows"] == 0
        ),
        timeout_s=60,
        what="events and ledger stored",
    )
    # Through the running worker, which holds the embedded ClickHouse.
    out = _replay(pipeline, "--from", "earliest")
    assert "through the running worker" in out
    assert _replayed(out) == transcript_messages + sent
    # verify, while the worker holds ClickHouse, asks it for ClickHouse's side.
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "verify", str(corpus / "projects")],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    assert "from the running worker" in done.stdout
    # verify --topics: every record the topics hold, stored once with its values.
    out = _verify_topics(pipeline, 0)
    assert "through the running worker" in out
    assert "events: 6 rows, 6 stored, 0 missing, 0 doubled, 0 with other values" in out, out
    assert "token_usage_ledger: 1 rows, 1 stored" in out, out
    pipeline.stop_worker()
    with pipeline.clickhouse() as ch:
        live = snapshot(ch)
        # The truth, after a replay through the worker: nothing doubled, views included.
        assert report_totals(build(ch, ReportRequest("daily"))) == daily_totals(reference)
        assert live["events"][0] == 6 and live["token_usage_ledger"][0] == 1
        assert ch.query("SELECT sum(events), sum(tokens_input) FROM hourly_metrics") == [
            (6, sum(10 + i for i in range(5)))
        ]
        assert ch.query("SELECT sum(prompt_calls) FROM user_usage_daily") == [(5,)]
        assert live["dead_letters"][0] > 0 and live["file_positions"][0] > 0
        # What a lost part of ClickHouse looks like: the transcript tables emptied.
        ch.execute("TRUNCATE TABLE transcript_lines")
        ch.execute("TRUNCATE TABLE dead_letters")
        assert snapshot(ch) != live

    # With no worker running, verify opens ClickHouse itself and names what was lost.
    out = _verify_topics(pipeline, 1)
    assert "transcript_lines: " in out and " 0 stored, " in out and "MISMATCH" in out, out

    # With no worker running, the command opens ClickHouse itself: restored, then unchanged.
    for _ in range(2):
        out = _replay(pipeline, "--from", "earliest")
        assert "through the running worker" not in out
        with pipeline.clickhouse() as ch:
            assert snapshot(ch) == live

    # --from TIME: exactly the messages sent since (found by bisection on record times).
    stamp = between.isoformat().replace("+00:00", "Z")
    assert _replayed(_replay(pipeline, "--from", stamp)) == sent
    assert _replayed(_replay(pipeline, "--from", stamp, "--topics", "ledger")) == 1
    assert _replayed(_replay(pipeline, "--from", "earliest", "--until", stamp)) == (
        transcript_messages
    )
    with pipeline.clickhouse() as ch:
        assert snapshot(ch) == live
    _verify_topics(pipeline, 0)
    # Tampered tables: a value changed in events, a row added to a rollup.
    with pipeline.clickhouse() as ch:
        ch.execute(
            "ALTER TABLE events UPDATE tokens_input = 999 WHERE event_id = 'e1' "
            "SETTINGS mutations_sync = 1"
        )
        ch.execute(
            "INSERT INTO daily_metrics (project_id, day, event_type, model, events) "
            "VALUES ('p', today(), 'prompt_call', 'm', 1)"
        )
    out = _verify_topics(pipeline, 1, "events")
    assert "differs: e1: stored ('prompt_call', 999," in out, out
    assert "daily_metrics p/" in out, out


def _verify_topics(pipeline: Pipeline, code: int, *topics: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "verify", "--topics", *topics],
        env=pipeline.env,
        cwd=pipeline.tmp,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout


def test_replay_reads_a_kafka_brokers_log_after_it_restarted(
    kafka1: KafkaCluster, tmp_path: Path
) -> None:
    """Apache Kafka keeps its log on disk: after the broker is killed and started again, a replay
    still finds every message and restores what ClickHouse lost, changing nothing else."""
    corpus = tmp_path / "claude"
    generate(corpus, lines=400, seed=9)
    reference = Reference.load(corpus)
    url = os.environ.get("INGESTOR_TEST_CLICKHOUSE_URL") or f"chdb://{tmp_path / 'chdb'}"
    pipeline = Pipeline(kafka1.bootstrap, tmp_path, url, tansu=False)
    pipeline.prepare()
    try:
        pipeline.start_worker()
        pipeline.send(corpus)
        pipeline.wait_stored(reference)
        messages = pipeline.stats()["counts"]["messages"]  # type: ignore[index]
    finally:
        pipeline.stop_worker(kill=True)
    with pipeline.clickhouse() as ch:
        live = snapshot(ch)
        ch.execute("TRUNCATE TABLE transcript_lines")
        ch.execute("TRUNCATE TABLE dead_letters")

    kafka1.restart(1)  # kill -9, then the same node on the same log
    assert _replayed(_replay(pipeline, "--from", "earliest")) == messages
    with pipeline.clickhouse() as ch:
        assert snapshot(ch) == live
        assert report_totals(build(ch, ReportRequest("daily"))) == daily_totals(reference)
