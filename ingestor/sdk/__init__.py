"""``ingestor.sdk``: the producer embedded in LLM apps.

::

    from ingestor.sdk import Tracker

    tracker = Tracker(project_id="support-bot", user_id="u7")   # bootstrap: env or `ingestor up`
    with tracker.run() as run:                                   # groups agent steps
        with tracker.step("plan", step_type="plan"):
            with tracker.prompt("claude-sonnet-4", prompt=messages) as call:
                reply = client.messages.create(...)
                call.response(reply.content[0].text, tokens_input=..., tokens_output=...)
        with tracker.tool("search_orders"):
            ...

    @tracker.tool("lookup")          # decorators time every call, sync or async
    async def lookup(order_id: str) -> dict: ...

    tracker.check(answer_ok, "cites a source")   # assertion_failed when false
    tracker.hallucination("self-check", confidence=0.9)
    tracker.error(exc)
    tracker.track({"event_type": "performance_alert", "metric": "p99_ms", ...})
    tracker.flush(2.0); tracker.stats(); tracker.close()

It never raises into the app and never blocks it: events go to a bounded queue and a background
thread sends them to Kafka in envelopes (``ingestor/wire.py``). Importing it loads neither Faust,
chdb, pydantic nor aiokafka (the sender thread imports aiokafka when it starts).
"""

from ingestor.sdk._spans import Run, Span
from ingestor.sdk._tracker import Stats, Tracker
from ingestor.sdk._transport import BOOTSTRAP_FILE, KafkaTransport, Transport, resolve_bootstrap

__all__ = [
    "BOOTSTRAP_FILE",
    "KafkaTransport",
    "Run",
    "Span",
    "Stats",
    "Tracker",
    "Transport",
    "resolve_bootstrap",
]
