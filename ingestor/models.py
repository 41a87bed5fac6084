"""The records ingestor carries, as frozen pydantic models. No I/O here.

- ``TranscriptLine``: the usage-relevant fields of one Claude Code JSONL line. Conversation text
  is never kept: ``strip_line`` reduces a raw line to metrics before it leaves the watcher, and
  the model drops any ``content`` it is given (only tool_use *names* survive).
- ``Event``: an observability event from the SDK, a union discriminated on ``event_type``.
- ``LedgerEntry``: one billed request, money as ``Decimal``.

Validation failures become ``InvalidRecord`` naming the field and the reason (``validate_*``).
Unknown extra fields are accepted and ignored, never stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ingestor.errors import InvalidRecord

__all__ = [
    "AgentStep",
    "AssertionFailed",
    "CacheCreation",
    "CostThresholdExceeded",
    "ErrorEvent",
    "Event",
    "EventBase",
    "HallucinationDetected",
    "LedgerEntry",
    "Message",
    "PerformanceAlert",
    "PromptCall",
    "ToolCall",
    "TranscriptLine",
    "Usage",
    "strip_line",
    "tool_use_names",
    "validate_event",
    "validate_ledger",
    "validate_transcript_line",
]


def _to_decimal(value: Any) -> Any:
    # JSON numbers arrive as floats; repr() gives the shortest exact spelling (0.1 -> "0.1").
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00: a validation error, not a crash
        raise ValueError(f"timestamp out of range in UTC: {exc}") from exc


Tokens = Annotated[int, Field(ge=0, strict=True)]
Money = Annotated[Decimal, BeforeValidator(_to_decimal), Field(allow_inf_nan=False)]
NonNegMoney = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0, allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=1024)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------- transcripts


class CacheCreation(_Frozen):
    ephemeral_5m_input_tokens: Tokens = 0
    ephemeral_1h_input_tokens: Tokens = 0


class Usage(_Frozen):
    input_tokens: Tokens
    output_tokens: Tokens
    cache_creation_input_tokens: Tokens = 0
    cache_read_input_tokens: Tokens = 0
    cache_creation: CacheCreation | None = None
    service_tier: str | None = None
    speed: Literal["standard", "fast"] | None = None

    def cache_split(self) -> tuple[int, int]:
        """Cache writes as (5-minute, 1-hour), ccusage's way (``cost.rs``): the ephemeral split
        whenever the line has a ``cache_creation`` object (even all zeros), else every
        ``cache_creation_input_tokens`` as a 5-minute write."""
        cc = self.cache_creation
        if cc is not None:
            return cc.ephemeral_5m_input_tokens, cc.ephemeral_1h_input_tokens
        return self.cache_creation_input_tokens, 0

    @property
    def cache_creation_tokens(self) -> int:
        write_5m, write_1h = self.cache_split()
        return write_5m + write_1h


class Message(_Frozen):
    id: str | None = None
    model: str | None = None
    usage: Usage | None = None
    tool_uses: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _drop_content(cls, data: Any) -> Any:
        if isinstance(data, dict) and "content" in data:
            names = tool_use_names(data["content"])
            data = {k: v for k, v in data.items() if k != "content"}
            data["tool_uses"] = tuple(data.get("tool_uses", ())) + names
        return data


class TranscriptLine(_Frozen):
    """One Claude Code JSONL line, reduced to what usage analytics needs."""

    type: str = ""  # ccusage does not read it: a usage line without one still counts
    timestamp: datetime | None = None
    session_id: str | None = Field(default=None, alias="sessionId")
    uuid: str | None = None
    parent_uuid: str | None = Field(default=None, alias="parentUuid")
    request_id: str | None = Field(default=None, alias="requestId")
    is_sidechain: bool = Field(default=False, alias="isSidechain")
    is_api_error_message: bool = Field(default=False, alias="isApiErrorMessage")
    cwd: str | None = None
    version: str | None = None
    cost_usd: Money | None = Field(default=None, alias="costUSD")  # ccusage counts any f64
    message: Message | None = None

    _utc = field_validator("timestamp")(lambda cls, v: None if v is None else _to_utc(v))

    @model_validator(mode="after")
    def _usage_needs_timestamp(self) -> TranscriptLine:
        if self.usage is not None and self.timestamp is None:
            raise ValueError("a line with message.usage must carry a timestamp")
        return self

    @property
    def usage(self) -> Usage | None:
        return None if self.message is None else self.message.usage


def tool_use_names(content: Any) -> tuple[str, ...]:
    """The names of a message content's ``tool_use`` items, in order (what ``strip_line`` keeps)."""
    if not isinstance(content, list):
        return ()
    return tuple(
        str(item["name"])
        for item in content
        if isinstance(item, dict) and item.get("type") == "tool_use" and "name" in item
    )


_LINE_KEYS = (
    "type",
    "timestamp",
    "sessionId",
    "uuid",
    "parentUuid",
    "requestId",
    "isSidechain",
    "isApiErrorMessage",
    "cwd",
    "version",
    "costUSD",
)
_MESSAGE_KEYS = ("id", "model", "usage")


def strip_line(obj: dict[str, Any]) -> dict[str, Any]:
    """Reduce a parsed JSONL line to the fields ``TranscriptLine`` reads; text never survives.

    Pure and cheap: the watcher calls it on every line before anything leaves the machine.
    """
    out = {key: obj[key] for key in _LINE_KEYS if key in obj}
    message = obj.get("message")
    if isinstance(message, dict):
        stripped = {key: message[key] for key in _MESSAGE_KEYS if key in message}
        names = tool_use_names(message.get("content"))
        if names:
            stripped["tool_uses"] = list(names)
        out["message"] = stripped
    elif message is not None:
        out["message"] = message  # let validation name it
    return out


# --------------------------------------------------------------------------- events

EventType = Literal[
    "prompt_call",
    "tool_call",
    "agent_step",
    "error",
    "assertion_failed",
    "hallucination_detected",
    "cost_threshold_exceeded",
    "performance_alert",
]
Status = Literal["success", "error", "timeout", "cancelled"]


class EventBase(_Frozen):
    """Fields every observability event carries (seed 003)."""

    event_id: Text
    project_id: Text
    timestamp: datetime
    user_id: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    env: str = "production"
    tags: tuple[str, ...] = ()
    model: str | None = None
    tokens_input: Tokens = 0
    tokens_output: Tokens = 0
    tokens_cache_read: Tokens = 0
    tokens_cache_write: Tokens = 0
    cost_usd: NonNegMoney = Decimal(0)
    latency_ms: Annotated[int, Field(ge=0, strict=True)] | None = None
    status: Status = "success"

    _utc = field_validator("timestamp")(lambda cls, v: _to_utc(v))


class PromptCall(EventBase):
    event_type: Literal["prompt_call"]
    # Prompt and response text are never stored; their sizes are.
    prompt_chars: Annotated[int, Field(ge=0)] | None = None
    response_chars: Annotated[int, Field(ge=0)] | None = None
    finish_reason: str | None = None


class ToolCall(EventBase):
    event_type: Literal["tool_call"]
    tool_name: Text
    tool_call_id: str | None = None
    error_message: str | None = None


class AgentStep(EventBase):
    event_type: Literal["agent_step"]
    step_number: Annotated[int, Field(ge=0, strict=True)]
    step_name: Text
    step_type: Literal["plan", "reason", "tool", "observe", "decide", "respond", "other"] = "other"
    agent_name: str | None = None


class ErrorEvent(EventBase):
    event_type: Literal["error"]
    error_type: Text
    error_message: Annotated[str, Field(max_length=4096)] = ""


class AssertionFailed(EventBase):
    event_type: Literal["assertion_failed"]
    assertion_name: Text
    expected: Annotated[str, Field(max_length=1024)] = ""
    actual: Annotated[str, Field(max_length=1024)] = ""


class HallucinationDetected(EventBase):
    event_type: Literal["hallucination_detected"]
    detection_method: Text
    confidence: Annotated[float, Field(ge=0, le=1)]
    severity: Literal["low", "medium", "high", "critical"] = "medium"


class CostThresholdExceeded(EventBase):
    event_type: Literal["cost_threshold_exceeded"]
    threshold_usd: NonNegMoney
    actual_usd: NonNegMoney
    window: str = "1d"
    # Set by the worker's budget alerts (``ingestor/alerts/``): which budget, whose spend, and
    # the window it crossed in.
    budget: str = ""
    scope: str = ""
    subject: str = ""
    window_start: datetime | None = None


class PerformanceAlert(EventBase):
    event_type: Literal["performance_alert"]
    metric: Text
    threshold: float
    actual_value: float


Event = Annotated[
    PromptCall
    | ToolCall
    | AgentStep
    | ErrorEvent
    | AssertionFailed
    | HallucinationDetected
    | CostThresholdExceeded
    | PerformanceAlert,
    Field(discriminator="event_type"),
]


# --------------------------------------------------------------------------- ledger


class LedgerEntry(_Frozen):
    """One billed request (seed 004). Money is Decimal end to end, never float."""

    request_id: Text
    user_id: Text
    provider_id: Text
    model_id: Text
    created_at: datetime
    vendor_cost: Annotated[NonNegMoney, Field(max_digits=18, decimal_places=8)]
    credits_deducted: Annotated[int, Field(ge=0, strict=True)]
    margin_multiplier: Annotated[NonNegMoney, Field(max_digits=6, decimal_places=2)]
    gross_margin_usd: Annotated[Money, Field(max_digits=18, decimal_places=8)]
    status: Literal["success", "failed", "cancelled"]
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0

    _utc = field_validator("created_at")(lambda cls, v: _to_utc(v))


# --------------------------------------------------------------------------- validation

_M = TypeVar("_M", bound=BaseModel)
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def _first_error(exc: ValidationError, *, tagged: bool = False) -> InvalidRecord:
    err = exc.errors(include_url=False)[0]
    loc = err["loc"]
    if tagged and len(loc) > 1:
        loc = loc[1:]  # a discriminated union puts the tag first; name the field as sent
    field = ".".join(str(part) for part in loc) or None
    if err["type"] == "union_tag_invalid":  # pydantic's message quotes the tag sent: maybe text
        return InvalidRecord(f"unknown {field or 'tag'}", field)
    return InvalidRecord(err["msg"], field)


def _validate(model: type[_M], data: Any) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from exc


def validate_transcript_line(data: Any) -> TranscriptLine:
    """A ``TranscriptLine`` or ``InvalidRecord`` naming the field and the reason."""
    return _validate(TranscriptLine, data)


def validate_event(data: Any) -> Event:
    """An ``Event`` of the right type or ``InvalidRecord``."""
    try:
        return _EVENT.validate_python(data)
    except ValidationError as exc:
        raise _first_error(exc, tagged=True) from exc


def validate_ledger(data: Any) -> LedgerEntry:
    return _validate(LedgerEntry, data)
