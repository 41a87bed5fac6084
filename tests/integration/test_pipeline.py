"""The whole pipeline on real parts: exact totals, every line accounted for, crashes and appends.

The oracle is ``ingestor.corpus.reference``: an independent, plain re-implementation of ccusage's
computation over the same files.
"""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from pipeline import (
    Pipeline,
    daily_totals,
    live_session_totals,
    report_totals,
    session_totals,
    wait_for,
)

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.report import ReportRequest, build

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_totals_equal_the_reference_and_every_line_is_accounted_for(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    corpus = tmp_path / "claude"
    stats = generate(corpus, lines=4000, seed=11)
    reference = Reference.load(corpus)
    assert stats.bad_lines > 0 and stats.streaming_copies > 0 and stats.sidechain_replays > 0

    pipeline.start_worker()
    assert pipeline.send(corpus) == reference.accounting.lines
    pipeline.wait_stored(reference)
    live = pipeline.get("/sessions/")
    pipeline.stop_worker()

    # The live Faust session table is exact under the dedup rule too.
    assert live_session_totals(live) == session_totals(reference)

    with pipeline.clickhouse() as ch:
        assert report_totals(build(ch, ReportRequest("daily"))) == daily_totals(reference)
        monthly = build(ch, ReportRequest("monthly"))
        assert {r["month"]: r["totalTokens"] for r in monthly["monthly"]} == {
            m: t.total_tokens for m, t in reference.monthly().items()
        }
        per_model = {
            r["modelName"]: (r["totalTokens"], r["cost"])
            for r in build(ch, ReportRequest("models"))["models"]
        }
        assert per_model == {m: (t.total_tokens, t.cost) for m, t in reference.models().items()}
        sessions = build(ch, ReportRequest("session"))["sessions"]
        assert {s["sessionId"]: s["totalTokens"] for s in sessions} == {
            s: t.total_tokens for s, t in reference.sessions().items()
        }
        totals = build(ch, ReportRequest("daily"))["totals"]
        assert totals["totalCost"] == reference.totals().cost

        # Every line: stored (counted, duplicate or no usage) or dead-lettered with a reason.
        acc = reference.accounting
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        [(dead, reasons)] = ch.query(
            "SELECT count(), countIf(reason != '') FROM dead_letters FINAL"
        )
        [(usage,)] = ch.query("SELECT count() FROM transcript_lines FINAL WHERE has_usage = 1")
        [(counted,)] = ch.query("SELECT count() FROM usage_dedup")
        assert (stored, dead, reasons) == (acc.valid, acc.invalid, acc.invalid)
        assert (usage, counted) == (acc.usage_lines, acc.counted)
        [(with_text,)] = ch.query(
            "SELECT count() FROM dead_letters WHERE source_file = '' OR source_length = 0"
        )
        assert with_text == 0  # each dead letter says where it came from


def test_lines_appended_while_running_are_picked_up_exactly(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=1500, seed=3)
    pipeline.start_worker()
    pipeline.send(corpus)
    pipeline.wait_stored(Reference.load(corpus))

    # New files in a new project, and new lines at the end of an existing file.
    extra = tmp_path / "extra"
    generate(extra, lines=1500, seed=4, projects=2)
    for path in (extra / "projects").iterdir():
        shutil.copytree(path, corpus / "projects" / f"new{path.name}")
    existing = sorted((corpus / "projects").rglob("*.jsonl"))[0]
    donor = sorted((extra / "projects").rglob("*.jsonl"))[0]
    with existing.open("ab") as out:
        out.write(donor.read_bytes())

    pipeline.send(corpus)
    reference = Reference.load(corpus)
    pipeline.wait_stored(reference)
    assert live_session_totals(pipeline.get("/sessions/")) == session_totals(reference)


def test_a_worker_killed_mid_stream_loses_and_doubles_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=12_000, seed=5)
    reference = Reference.load(corpus)
    pipeline.env["INGESTOR_BATCH_MAX_ROWS"] = "700"  # many small flushes, so the kill lands mid-way
    pipeline.send(corpus)
    pipeline.start_worker()
    wait_for(
        lambda: (pipeline.stats() or {}).get("counts", {}).get("rows_stored", 0) > 2000,
        timeout_s=120,
        what="some batches stored",
    )
    pipeline.stop_worker(kill=True)

    pipeline.start_worker()
    pipeline.wait_stored(reference)
    # The session table recovered from its changelog and the replay applied nothing twice.
    live = pipeline.get("/sessions/")
    pipeline.stop_worker()
    assert live_session_totals(live) == session_totals(reference)
    with pipeline.clickhouse() as ch:
        assert report_totals(build(ch, ReportRequest("daily"))) == daily_totals(reference)
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        assert stored == reference.accounting.valid


def test_dead_letters_reach_the_dead_letter_topic_with_location_and_reason(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    from topic_reader import read_topic

    corpus = tmp_path / "claude"
    project = corpus / "projects" / "-home-x"
    project.mkdir(parents=True)
    (project / "s1.jsonl").write_text(
        '{"type":"assistant","timestamp":"2025-01-01T00:00:00Z","sessionId":"s1",'
        '"message":{"id":"m","usage":{"input_tokens":-5,"output_tokens":1}}}\n'
        "{not json\n"
        '{"type":"user","timestamp":"2025-01-01T00:00:01Z","sessionId":"s1"}\n'
    )
    pipeline.start_worker()
    pipeline.send(corpus)
    wait_for(
        lambda: (
            (pipeline.stats() or {}).get("counts", {}).get("dead_letter", 0) == 2
            and pipeline.stats()["pending_rows"] == 0
        ),  # type: ignore[index]
        timeout_s=60,
        what="two dead letters",
    )
    letters = read_topic(pipeline.bootstrap, pipeline.settings.topic("dead-letters"), expected=2)
    by_offset = {m["location"]["file_offset"]: m for m in letters}
    assert by_offset[0]["field"] == "message.usage.input_tokens"
    assert "ccusage skips this line (field_type)" in by_offset[0]["reason"]
    assert by_offset[0]["location"]["file"].endswith("s1.jsonl")
    bad_json = next(m for m in letters if m["location"]["file_offset"] != 0)
    assert bad_json["raw"] == ""  # no text of the line: its hash and length instead
    assert bad_json["raw_sha256"] == hashlib.sha256(b"{not json").hexdigest()
    assert bad_json["raw_length"] == len(b"{not json")
    assert bad_json["reason"]


def test_events_and_ledger_reach_their_views_once_even_when_replayed(pipeline: Pipeline) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from aiokafka import AIOKafkaProducer

    from ingestor.wire import encode_envelope

    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)  # inside every TTL
    ts = now.isoformat().replace("+00:00", "Z")
    events = [
        {
            "event_id": f"e{i}",
            "event_type": "prompt_call",
            "project_id": "p",
            "user_id": "u1",
            "session_id": "s1",
            "timestamp": ts,
            "model": "m",
            "tokens_input": 10,
            "tokens_output": 5,
            "cost_usd": 0.1,
            "latency_ms": 100,
        }
        for i in range(3)
    ] + [
        {"event_id": "t1", "event_type": "tool_call", "project_id": "p", "timestamp": ts,
         "tool_name": "search", "status": "error"},
        {"event_id": "bad", "event_type": "prompt_call", "project_id": "p"},  # no timestamp
    ]  # fmt: skip
    ledger = [
        {"request_id": "r1", "user_id": "u1", "provider_id": "pr", "model_id": "m",
         "created_at": ts, "vendor_cost": "0.00000250", "credits_deducted": 3,
         "margin_multiplier": "2.50", "gross_margin_usd": "0.00000375", "status": "success"},
    ]  # fmt: skip
    topics = pipeline.settings

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
        await producer.start()
        try:
            envelope = encode_envelope("event", events)
            # The same envelope twice (a producer retry) and one event again on its own.
            for value in (envelope, envelope, orjson.dumps(events[0])):
                await producer.send_and_wait(topics.topic("events"), value, key=b"s1")
            await producer.send_and_wait(
                topics.topic("ledger"), encode_envelope("ledger", ledger), key=b"u1"
            )
        finally:
            await producer.stop()

    pipeline.start_worker()
    asyncio.run(produce())
    wait_for(
        lambda: (
            (pipeline.stats() or {}).get("counts", {}).get("messages", 0) >= 4
            and pipeline.stats()["pending_rows"] == 0
        ),  # type: ignore[index]
        timeout_s=60,
        what="events and ledger stored",
    )
    pipeline.stop_worker()
    with pipeline.clickhouse() as ch:
        [(n_events,)] = ch.query("SELECT count() FROM events FINAL")
        assert n_events == 4
        [(calls, tokens, cost)] = ch.query(
            "SELECT sum(events), sum(tokens_input), sum(cost_usd) FROM hourly_metrics "
            "WHERE event_type = 'prompt_call'"
        )
        assert (calls, tokens, cost) == (3, 30, Decimal("0.3"))
        [(user_calls, user_tokens)] = ch.query(
            "SELECT sum(prompt_calls), sum(total_tokens) FROM user_usage_daily WHERE user_id = 'u1'"
        )
        assert (user_calls, user_tokens) == (3, 45)
        [(tool_rows,)] = ch.query("SELECT count() FROM tool_calls")
        assert tool_rows == 1
        [(margin,)] = ch.query("SELECT sum(gross_margin_usd) FROM token_usage_ledger FINAL")
        assert margin == Decimal("0.00000375")
        [(dead, field)] = ch.query(
            "SELECT count(), any(field) FROM dead_letters WHERE kind = 'event'"
        )
        assert dead == 2 and field == "timestamp"  # the bad event, in each copy of the envelope


def test_http_refuses_foreign_hosts_and_bad_parameters(pipeline: Pipeline) -> None:
    import urllib.error
    import urllib.request

    pipeline.start_worker()
    port = pipeline.env["INGESTOR_WEB_PORT"]

    def status(path: str, host: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if host is not None:
            request.add_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, ""
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        assert status("/sessions/")[0] == 200
        assert status("/sessions/", host=f"localhost:{port}")[0] == 200
        for path in ("/sessions/", "/stats/", "/report/daily/", "/sessions/x/", "/verify/?dir=/"):
            assert status(path, host="evil.example.com")[0] == 421, path
        assert status("/verify/?dir=/&x=1")[0] == 400
        # POST /replay/ writes: JSON only (a web page cannot send that without a preflight).
        body = b'{"topic": "t", "partition": 0, "start": 0, "end": 0}'
        for host, kind, expected in [
            ("evil.example.com", "application/json", 421),
            (None, "text/plain", 415),
            (None, "application/json", 400),  # "t" is not an input topic
        ]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/replay/", data=body, method="POST"
            )
            request.add_header("Content-Type", kind)
            if host is not None:
                request.add_header("Host", host)
            try:
                urllib.request.urlopen(request, timeout=30)
                code = 200
            except urllib.error.HTTPError as exc:
                code = exc.code
            assert code == expected, (host, kind, code)
        for path, reason in [
            ("/sessions/?limit=3", "limit"),
            ("/stats/?x=1", "x"),
            ("/report/daily/?tz=bad", "bad"),  # the reason names the value
            ("/report/daily/?since=2025", "since"),
            ("/report/daily/?nope=1", "nope"),
        ]:
            code, body = status(path)
            assert (code, reason in body) == (400, True), (path, body)
    finally:
        pipeline.stop_worker()
