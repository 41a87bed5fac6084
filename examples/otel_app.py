"""An app already instrumented with OpenTelemetry GenAI, feeding ingestor without new code.

Run it against the local stack (``pip install 'ingestor[otel]'``)::

    make run                                   # terminal 1: broker, worker, ClickHouse
    .venv/bin/python examples/otel_app.py      # terminal 2
    .venv/bin/ingestor report events           # its spans, as events

OpenLLMetry, OpenLIT or a vendor SDK set the ``gen_ai.*`` attributes themselves; here a fake
client sets them by hand. One exporter line is all the wiring: ``IngestorSpanExporter`` maps
each GenAI span to an event (cached tokens moved out of ``input_tokens``; see
``ingestor/sdk/otel.py``) and the reports price its tokens from the price file.
"""

from __future__ import annotations

import random
import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ingestor.sdk import Tracker
from ingestor.sdk.otel import IngestorSpanExporter

tracker = Tracker(project_id="otel-bot", user_id="user-7", env="dev")
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(IngestorSpanExporter(tracker, close_tracker=True)))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("otel-app")


def chat(question: str, conversation: str) -> str:
    """Stands in for an instrumented LLM client call."""
    with tracer.start_as_current_span("chat claude-sonnet-4-5") as span:
        time.sleep(random.uniform(0.01, 0.03))
        cached = random.choice([0, 800])
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                "gen_ai.conversation.id": conversation,
                "gen_ai.usage.input_tokens": 1000 + cached,  # cached tokens inside, as OTel says
                "gen_ai.usage.cache_read.input_tokens": cached,
                "gen_ai.usage.output_tokens": 120,
            }
        )
        return f"answer to {question!r}"


def main() -> None:
    with tracer.start_as_current_span("invoke_agent support") as agent:
        agent.set_attributes(
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
        )
        for n in range(3):
            chat(f"question {n}", conversation="conv-1")
        with tracer.start_as_current_span("execute_tool search") as tool:
            tool.set_attributes(
                {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
            )
    provider.shutdown()  # flushes the spans, then the tracker
    print(tracker.stats())


if __name__ == "__main__":
    main()
