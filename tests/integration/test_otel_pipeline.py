"""An OpenTelemetry GenAI span end to end: ``IngestorSpanExporter`` → Kafka → the worker →
ClickHouse → ``ingestor report events`` and ``costs``, against hand-computed values.

The convention counts cached tokens inside ``gen_ai.usage.input_tokens``; we store them outside
(Anthropic's meaning), so the span's cost must price each cached token once, at its cache rate,
never again as input. The same span exported twice is one event; its cost crosses a budget once.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pipeline import Pipeline, wait_for

from ingestor.report import ReportRequest, build
from ingestor.sdk import Tracker
from ingestor.sdk.otel import IngestorSpanExporter

pytestmark = [pytest.mark.integration]

MODEL = "claude-sonnet-4-5-20250929"  # $3 input, $15 output, $0.30 cache read, $3.75 write
# 1000 uncached input, 100 output, 800 cache read, 200 cache write, per million tokens:
COST = Decimal("0.00549")  # (1000*3 + 100*15 + 800*0.3 + 200*3.75) / 1e6
COST_IF_CACHE_COUNTED_AS_INPUT_TOO = Decimal("0.00849")


def test_a_genai_span_reaches_the_reports_with_cached_tokens_priced_once(
    pipeline: Pipeline,
) -> None:
    pipeline.env["INGESTOR_BUDGETS"] = "project=otel-bot:1d:0.005"
    pipeline.start_worker()
    captured = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("chat claude-sonnet-4-5") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.model": MODEL,
                "gen_ai.conversation.id": "conv-1",
                "gen_ai.usage.input_tokens": 2000,  # cache read and creation inside, as OTel says
                "gen_ai.usage.cache_read.input_tokens": 800,
                "gen_ai.usage.cache_creation.input_tokens": 200,
                "gen_ai.usage.output_tokens": 100,
            }
        )
    tracker = Tracker(
        pipeline.bootstrap, project_id="otel-bot", user_id="u7", linger_s=60,
        topic=pipeline.settings.topic("events"),
    )  # fmt: skip
    exporter = IngestorSpanExporter(tracker, close_tracker=True)
    spans = captured.get_finished_spans()
    exporter.export(spans)
    exporter.export(spans)  # re-exported (a processor's retry): the same event id
    assert exporter.force_flush(30_000)
    exporter.shutdown()

    def stored() -> bool:
        s = pipeline.stats() or {}
        return s.get("counts", {}).get("messages", 0) >= 1 and s.get("pending_rows") == 0

    wait_for(stored, timeout_s=60, what="the span's event stored")
    pipeline.stop_worker()
    with pipeline.clickhouse() as ch:
        [event] = [
            e for e in build(ch, ReportRequest("events"))["events"]
            if e["eventType"] == "prompt_call"
        ]  # fmt: skip
        assert (event["model"], event["sessionId"], event["userId"]) == (MODEL, "conv-1", "u7")
        tokens = (event["inputTokens"], event["outputTokens"], event["cacheReadTokens"],
                  event["cacheCreationTokens"])  # fmt: skip
        assert tokens == (1000, 100, 800, 200)
        assert (event["costUsd"], event["costSource"]) == (COST, "calculated")
        [costs] = build(ch, ReportRequest("costs"))["costs"]
        assert (costs["model"], costs["requests"], costs["costUsd"]) == (MODEL, 1, COST)
        assert costs["costUsd"] != COST_IF_CACHE_COUNTED_AS_INPUT_TOO
        [alert] = build(ch, ReportRequest("alerts"))["alerts"]
        assert (alert["scope"], alert["subject"], alert["actualUsd"]) == (
            "project", "otel-bot", COST,
        )  # fmt: skip
