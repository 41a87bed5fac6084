"""OpenTelemetry GenAI spans through ``IngestorSpanExporter`` into valid events, cached tokens
moved out of the input so no token is priced twice."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, Tracer
from sdk_fakes import FakeBroker

from ingestor.models import validate_event
from ingestor.report.events import event_cost
from ingestor.rows.records import event_rows
from ingestor.sdk import Tracker
from ingestor.sdk.otel import IngestorSpanExporter
from ingestor.usage.prices import price_table

SONNET = "claude-sonnet-4-5-20250929"


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def setup(broker: FakeBroker) -> Iterator[tuple[Tracer, IngestorSpanExporter]]:
    tracker = Tracker(project_id="p", linger_s=0.01, transport=broker.transport)
    exporter = IngestorSpanExporter(tracker, close_tracker=True)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def _records(exporter: IngestorSpanExporter, broker: FakeBroker) -> list[dict[str, Any]]:
    assert exporter.force_flush(5000)
    return broker.records


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.response.model": SONNET,
    "gen_ai.conversation.id": "conv-1",
    "gen_ai.usage.input_tokens": 1000,  # the convention: cached tokens inside
    "gen_ai.usage.cache_read.input_tokens": 600,
    "gen_ai.usage.cache_creation.input_tokens": 100,
    "gen_ai.usage.output_tokens": 50,
    "gen_ai.usage.reasoning.output_tokens": 20,
}


def test_a_chat_span_becomes_a_prompt_call(
    setup: tuple[Tracer, IngestorSpanExporter], broker: FakeBroker
) -> None:
    tracer, exporter = setup
    with tracer.start_as_current_span("chat claude", attributes=CHAT) as span:
        trace_id = span.get_span_context().trace_id
    with tracer.start_as_current_span("plain http"):  # not GenAI: skipped
        pass
    (record,) = _records(exporter, broker)
    event = validate_event(record)
    assert event.event_type == "prompt_call"
    assert (event.model, event.session_id, event.run_id) == (SONNET, "conv-1", f"{trace_id:032x}")
    assert (event.tokens_input, event.tokens_cache_read, event.tokens_cache_write) == (
        300,
        600,
        100,
    )
    assert event.tokens_output == 50  # reasoning tokens are inside it, not added
    assert set(event.tags) == {"provider:anthropic", "reasoning_tokens:20"}
    assert event.latency_ms is not None and event.status == "success"
    assert (exporter.exported, exporter.skipped) == (1, 1)


def test_no_cached_token_is_priced_twice(
    setup: tuple[Tracer, IngestorSpanExporter], broker: FakeBroker
) -> None:
    tracer, exporter = setup
    with tracer.start_as_current_span("chat", attributes=CHAT):
        pass
    # Anthropic's meaning sent unchanged (input below the cached count): kept as it is.
    anthropic = {**CHAT, "gen_ai.usage.input_tokens": 300}
    with tracer.start_as_current_span("chat", attributes=anthropic):
        pass
    costs = []
    for record in _records(exporter, broker):
        (row,) = event_rows(validate_event(record))["events"]
        assert row["cost_provided"] == 0  # priced at query time
        tokens = (row["tokens_input"], row["tokens_output"], row["tokens_cache_read"],
                  row["tokens_cache_write"])  # fmt: skip
        costs.append(event_cost(price_table(), row["model"], tokens))
    # 300 input at $3, 50 output at $15, 600 cache reads at $0.30, 100 writes at $3.75 per M
    expected = Decimal(300 * 3 + 50 * 15 + 600 * Decimal("0.3") + 100 * Decimal("3.75")) / 10**6
    assert costs == [expected, expected]


def test_tools_agents_errors_and_our_own_names(
    setup: tuple[Tracer, IngestorSpanExporter], broker: FakeBroker
) -> None:
    tracer, exporter = setup
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
    with tracer.start_as_current_span("tool", attributes=tool) as span:
        span.set_status(Status(StatusCode.ERROR, "boom"))
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    with tracer.start_as_current_span("agent", attributes=agent):
        pass
    ours = {"tokens_input": 7, "ingestor.cost_usd": "0.5", "model": "m", "run_id": "r1"}
    with tracer.start_as_current_span("custom", attributes=ours):
        pass
    tool_e, agent_e, own = (validate_event(r) for r in _records(exporter, broker))
    assert (tool_e.event_type, getattr(tool_e, "tool_name", None), tool_e.status) == (
        "tool_call", "search", "error",
    )  # fmt: skip
    assert (agent_e.event_type, getattr(agent_e, "step_name", None)) == ("agent_step", "planner")
    assert (own.tokens_input, own.cost_usd, own.model, own.run_id) == (7, Decimal("0.5"), "m", "r1")


def test_a_re_exported_span_keeps_its_id(broker: FakeBroker) -> None:
    tracker = Tracker(project_id="p", linger_s=0.01, transport=broker.transport)
    exporter = IngestorSpanExporter(tracker)
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("chat", attributes=CHAT) as span:
        pass
    exporter.export([span, span])  # type: ignore[list-item]
    assert tracker.flush(5)
    ids = {r["event_id"] for r in broker.records}
    assert len(ids) == 1
    tracker.close(1)


def test_importing_the_sdk_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, ingestor.sdk\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
