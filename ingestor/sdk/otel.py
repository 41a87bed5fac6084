"""OpenTelemetry GenAI spans in, our events out: ``IngestorSpanExporter`` feeds a ``Tracker``.

::

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from ingestor.sdk import Tracker
    from ingestor.sdk.otel import IngestorSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(IngestorSpanExporter(Tracker(project_id="bot"))))
    trace.set_tracer_provider(provider)   # OpenLLMetry, OpenLIT, vendor SDKs now feed ingestor

``import ingestor.sdk`` never imports OpenTelemetry; this module does when it is installed
(``pip install 'ingestor[otel]'``) and works without it on anything shaped like a span (name,
attributes, start/end time in ns, status, context), so the mapping is testable either way.

**Which spans.** A span with a ``gen_ai.*`` attribute, or with one of our own event fields
(``tokens_input`` …); every other span is skipped. ``export`` only queues (the Tracker never
blocks and never raises), so it returns SUCCESS at once; ``force_flush`` flushes the Tracker.

**Mapping** (semantic conventions for GenAI, current names):

======================================== ============================================
``gen_ai.operation.name``                ``execute_tool`` → ``tool_call``
                                         (``gen_ai.tool.name``), ``invoke_agent`` /
                                         ``create_agent`` → ``agent_step``, anything
                                         else (chat, text_completion, embeddings …) →
                                         ``prompt_call``
``gen_ai.response.model``, else
``gen_ai.request.model``                 ``model``
``gen_ai.provider.name``                 tag ``provider:<name>``
``gen_ai.conversation.id``               ``session_id``
``gen_ai.usage.output_tokens``           ``tokens_output`` (reasoning tokens are part of
                                         it; ``gen_ai.usage.reasoning.output_tokens`` is
                                         kept as a tag, never added)
``gen_ai.usage.cache_read.input_tokens`` ``tokens_cache_read``
``gen_ai.usage.cache_creation.input_tokens`` ``tokens_cache_write``
``gen_ai.usage.input_tokens``            ``tokens_input`` = input − cache read − cache
                                         creation (see below)
span start, end − start, status ERROR    ``timestamp``, ``latency_ms``, ``status``
trace id, span id                        ``run_id`` (the trace), the event id (a uuid5 of
                                         both: a re-exported span is stored once)
======================================== ============================================

**Cached tokens.** The convention counts cached tokens *inside* ``gen_ai.usage.input_tokens``;
Anthropic's API and Claude Code transcripts count them *outside*, and so do our tables
(``tokens_input`` is uncached input, priced at the input rate; cache reads and writes have their
own rates). So the exporter subtracts the cache reads and writes from the input. An
instrumentation that reports Anthropic's numbers unchanged (input *below* the cached count) is
recognised and its input kept as it is, so a cached token is never priced twice.

**Our own names win.** A span attribute named like an event field (``tokens_input``,
``tokens_output``, ``tokens_cache_read``, ``tokens_cache_write``, ``cost_usd``, ``model``,
``session_id``, ``run_id``, ``user_id``, ``step_number``, ``step_name``, ``tool_name``,
``event_type``; also under an ``ingestor.`` prefix) is taken as is, in our meaning. Without
``cost_usd`` the reports price the tokens from the price file at query time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingestor.sdk._tracker import Tracker

__all__ = ["IngestorSpanExporter", "event_of_span"]

try:  # the interface when OpenTelemetry is installed; a stand-in otherwise
    from opentelemetry.sdk.trace.export import SpanExporter as _Base
    from opentelemetry.sdk.trace.export import SpanExportResult
except ImportError:  # pragma: no cover - exercised without the [otel] extra

    class SpanExportResult(Enum):  # type: ignore[no-redef]
        SUCCESS = 0
        FAILURE = 1

    class _Base:  # type: ignore[no-redef]
        pass


_OURS = (
    "event_type", "model", "session_id", "run_id", "user_id", "tokens_input", "tokens_output",
    "tokens_cache_read", "tokens_cache_write", "cost_usd", "step_number", "step_name",
    "step_type", "agent_name", "tool_name", "tool_call_id", "finish_reason",
)  # fmt: skip
_TOOL_OPS = {"execute_tool"}
_AGENT_OPS = {"invoke_agent", "create_agent"}
_STATUS_ERROR = 2  # opentelemetry.trace.StatusCode.ERROR


def event_of_span(span: Any) -> tuple[dict[str, Any], str] | None:
    """The event of one span and its idempotency key, or None when it is not a GenAI span."""
    attrs: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    ours = {k: attrs[p + k] for p in ("ingestor.", "") for k in _OURS if p + k in attrs}
    if not ours and not any(str(k).startswith("gen_ai.") for k in attrs):
        return None
    op = str(attrs.get("gen_ai.operation.name", ""))
    event: dict[str, Any] = {"event_type": _event_type(op)}
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
    if model:
        event["model"] = str(model)
    tags = []
    if attrs.get("gen_ai.provider.name"):
        tags.append(f"provider:{attrs['gen_ai.provider.name']}")
    if attrs.get("gen_ai.usage.reasoning.output_tokens") is not None:
        tags.append(f"reasoning_tokens:{_int(attrs['gen_ai.usage.reasoning.output_tokens'])}")
    if tags:
        event["tags"] = tags
    if attrs.get("gen_ai.conversation.id"):
        event["session_id"] = str(attrs["gen_ai.conversation.id"])
    event.update(_tokens(attrs))
    if event["event_type"] == "tool_call":
        event["tool_name"] = str(attrs.get("gen_ai.tool.name") or getattr(span, "name", "tool"))
    elif event["event_type"] == "agent_step":
        event["step_name"] = str(attrs.get("gen_ai.agent.name") or getattr(span, "name", "agent"))
        event["step_number"] = 0
    start, end = getattr(span, "start_time", None), getattr(span, "end_time", None)
    if start is not None:
        event["timestamp"] = start / 1e9
        if end is not None and end >= start:
            event["latency_ms"] = (end - start) // 1_000_000
    status = getattr(getattr(span, "status", None), "status_code", None)
    if getattr(status, "value", status) == _STATUS_ERROR:
        event["status"] = "error"
    context = getattr(span, "context", None)
    trace_id, span_id = getattr(context, "trace_id", 0), getattr(context, "span_id", 0)
    if trace_id:
        event["run_id"] = f"{trace_id:032x}"
    event.update(ours)  # our own names, in our meaning, win
    return event, f"otel:{trace_id:032x}:{span_id:016x}"


def _event_type(op: str) -> str:
    if op in _TOOL_OPS:
        return "tool_call"
    if op in _AGENT_OPS:
        return "agent_step"
    return "prompt_call"


def _tokens(attrs: Mapping[str, Any]) -> dict[str, int]:
    """The convention's usage in our meaning: cached tokens outside the input."""
    out: dict[str, int] = {}
    inp = attrs.get("gen_ai.usage.input_tokens")
    read = _int(attrs.get("gen_ai.usage.cache_read.input_tokens"))
    write = _int(attrs.get("gen_ai.usage.cache_creation.input_tokens"))
    if inp is not None:
        total = _int(inp)
        # Below the cached count it cannot include them: Anthropic's meaning, kept as is.
        out["tokens_input"] = total - read - write if total >= read + write else total
    if attrs.get("gen_ai.usage.output_tokens") is not None:
        out["tokens_output"] = _int(attrs["gen_ai.usage.output_tokens"])
    if read:
        out["tokens_cache_read"] = read
    if write:
        out["tokens_cache_write"] = write
    return out


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


class IngestorSpanExporter(_Base):
    """An OpenTelemetry ``SpanExporter`` that records GenAI spans as events of ``tracker``.

    Never raises and never blocks: a span that cannot be mapped is counted in ``skipped``.
    ``shutdown`` closes the tracker only when ``close_tracker`` is true (it may be shared)."""

    def __init__(self, tracker: Tracker, *, close_tracker: bool = False) -> None:
        self.tracker = tracker
        self.close_tracker = close_tracker
        self.exported = 0
        self.skipped = 0

    def export(self, spans: Sequence[Any]) -> Any:
        for span in spans:
            try:
                mapped = event_of_span(span)
            except Exception:
                mapped = None
            if mapped is None:
                self.skipped += 1
                continue
            event, key = mapped
            if self.tracker.track(event, idempotency_key=key) is not None:
                self.exported += 1
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.tracker.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        if self.close_tracker:
            self.tracker.close()
