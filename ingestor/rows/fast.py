"""The ``transcript_lines`` row of a well-formed line without pydantic: the worker's hot path.

``fast_transcript_values(data, ...)`` equals ``transcript_values(validate_transcript_line(data),
...)`` whenever it returns values (``fast_transcript_row``: the same as a dict). It accepts only
the common shape the watcher sends: exact JSON types (``type(x) is str``, never a subclass, a
bool for an int or a string for a number), tokens in ``[0, 2**63)``, an aware ISO timestamp in
the one spelling both parsers read alike, a stripped ``message`` (no ``content``), camelCase
keys only. Anything else returns ``None`` and the caller
takes the model path, which decides — so errors and dead letters are the model's, unchanged.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeGuard

from ingestor.rows.records import (
    NO_COSTS,
    TRANSCRIPT_COLUMNS,
    assemble_transcript_values,
    usage_costs,
)
from ingestor.wire import TranscriptSource

__all__ = [
    "TOKEN_LIMIT",
    "LineFields",
    "fast_transcript_row",
    "fast_transcript_values",
    "line_fields",
]

TOKEN_LIMIT = 1 << 63  # token counts (and integer costs) this path takes; others go the slow way
# Snake-case names the model also accepts (populate_by_name): which spelling wins is its call.
_ALIASES = frozenset(
    {"session_id", "parent_uuid", "request_id", "is_sidechain", "is_api_error_message", "cost_usd"}
)
# The spelling Python's fromisoformat and pydantic's parser agree on (ASCII digits, 'Z' or
# '+hh:mm' within a day, at most microseconds); other spellings (naive, '+02', '+00:60', lower-case
# 'z') go the slow way.
_TIMESTAMP = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII
)
_NO_TOOLS: list[str] = []
_SPEEDS = frozenset({"standard", "fast"})


def _token(value: Any) -> TypeGuard[int]:
    return type(value) is int and 0 <= value < TOKEN_LIMIT


def _timestamp(value: str) -> datetime | None:
    if _TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def fast_transcript_row(
    data: Any, source: TranscriptSource, offset: int, length: int
) -> dict[str, Any] | None:
    """The row ``transcript_row`` would build for ``data``, or ``None`` to take the model path."""
    values = fast_transcript_values(data, source, offset, length)
    return None if values is None else dict(zip(TRANSCRIPT_COLUMNS, values, strict=True))


def fast_transcript_values(
    data: Any, source: TranscriptSource, offset: int, length: int
) -> tuple[Any, ...] | None:
    """The values ``transcript_values`` would give for ``data``, or ``None`` to take the model
    path."""
    fields = line_fields(data)
    if fields is None:
        return None
    tokens, speed, cost_usd = fields.tokens, fields.speed, fields.cost_usd
    has_usage = fields.has_usage
    costs = usage_costs(fields.model, tokens, speed, cost_usd) if has_usage else NO_COSTS
    return assemble_transcript_values(
        source,
        offset,
        length,
        fields.session_id,
        fields.line_type,
        fields.uuid,
        fields.parent_uuid,
        fields.request_id,
        fields.message_id,
        fields.timestamp,
        fields.is_sidechain,
        fields.is_api_error,
        fields.model,
        has_usage,
        tokens,
        fields.tier,
        speed,
        costs,
        fields.tool_uses,
        fields.cwd,
        fields.version,
    )


class LineFields(NamedTuple):
    """What a well-formed line gives its row, before the file's values and the costs."""

    session_id: str | None
    line_type: str
    uuid: str | None
    parent_uuid: str | None
    request_id: str | None
    message_id: str | None
    timestamp: datetime | None
    is_sidechain: bool
    is_api_error: bool
    model: str
    has_usage: bool
    tokens: tuple[int, int, int, int, int, int]  # in, out, creation, read, 5m, 1h
    tier: str
    speed: str
    cost_usd: Decimal | None
    tool_uses: list[str]
    cwd: str | None
    version: str | None


def line_fields(data: Any) -> LineFields | None:
    """The fields of ``data`` when it has the common shape (the module's docstring), else None:
    the worker's fast path and the watcher's columns (``producer/lines.py``) both read a line
    through this one function."""
    if type(data) is not dict or not _ALIASES.isdisjoint(data):
        return None
    get = data.get
    line_type = get("type", "")
    session_id = get("sessionId")
    uuid = get("uuid")
    parent_uuid = get("parentUuid")
    request_id = get("requestId")
    cwd = get("cwd")
    version = get("version")
    is_sidechain = get("isSidechain", False)
    is_api_error = get("isApiErrorMessage", False)
    if (
        type(line_type) is not str
        or (session_id is not None and type(session_id) is not str)
        or (uuid is not None and type(uuid) is not str)
        or (parent_uuid is not None and type(parent_uuid) is not str)
        or (request_id is not None and type(request_id) is not str)
        or (cwd is not None and type(cwd) is not str)
        or (version is not None and type(version) is not str)
        or type(is_sidechain) is not bool
        or type(is_api_error) is not bool
    ):
        return None

    raw_ts = get("timestamp")
    timestamp: datetime | None = None
    if raw_ts is not None and (
        type(raw_ts) is not str or (timestamp := _timestamp(raw_ts)) is None
    ):
        return None

    message = get("message")
    message_id: str | None = None
    model: str | None = None
    tool_uses: list[str] = _NO_TOOLS
    usage: Any = None
    if message is not None:
        if type(message) is not dict or "content" in message:
            return None
        message_id = message.get("id")
        model = message.get("model")
        usage = message.get("usage")
        tool_uses = message.get("tool_uses", _NO_TOOLS)
        if (
            (message_id is not None and type(message_id) is not str)
            or (model is not None and type(model) is not str)
            or type(tool_uses) is not list
        ):
            return None
        for name in tool_uses:  # a loop, not any(): most lines have none or one
            if type(name) is not str:
                return None
    model_name = model or ""

    if usage is None:
        tokens = (0, 0, 0, 0, 0, 0)
        tier = speed = ""
    else:
        if type(usage) is not dict or timestamp is None:
            return None
        input_tokens = usage.get("input_tokens")
        output_tokens = usage.get("output_tokens")
        creation = usage.get("cache_creation_input_tokens", 0)
        cache_read = usage.get("cache_read_input_tokens", 0)
        service_tier = usage.get("service_tier")
        raw_speed = usage.get("speed")
        split = usage.get("cache_creation")
        if not (
            _token(input_tokens)
            and _token(output_tokens)
            and _token(creation)
            and _token(cache_read)
            and (service_tier is None or type(service_tier) is str)
            and (raw_speed is None or raw_speed in _SPEEDS)
        ):
            return None
        write_5m, write_1h = creation, 0
        if split is not None:  # Usage.cache_split's rule: the object wins, even all zeros
            if type(split) is not dict:
                return None
            write_5m = split.get("ephemeral_5m_input_tokens", 0)
            write_1h = split.get("ephemeral_1h_input_tokens", 0)
            if not (_token(write_5m) and _token(write_1h)):
                return None
        tokens = (input_tokens, output_tokens, write_5m + write_1h, cache_read, write_5m, write_1h)
        tier = service_tier or ""
        speed = raw_speed or ""

    raw_cost = get("costUSD")
    cost_usd: Decimal | None = None
    if raw_cost is not None:
        if type(raw_cost) is int:
            if not -TOKEN_LIMIT < raw_cost < TOKEN_LIMIT:
                return None
            cost_usd = Decimal(raw_cost)
        elif type(raw_cost) is float:
            if not math.isfinite(raw_cost):
                return None
            cost_usd = Decimal(repr(raw_cost))  # models._to_decimal's spelling
        else:
            return None
    return LineFields(
        session_id,
        line_type,
        uuid,
        parent_uuid,
        request_id,
        message_id,
        timestamp,
        is_sidechain,
        is_api_error,
        model_name,
        usage is not None,
        tokens,
        tier,
        speed,
        cost_usd,
        tool_uses,
        cwd,
        version,
    )
