"""A usage line's wire record: what ccusage reads of it, or why ccusage skips it. Pure.

``ingestor.usage.accept`` decides, from the line's bytes, whether ccusage 20.x counts a line.
A counted line travels *canonical*: the fields ccusage read, as it read them (timestamp in UTC
milliseconds, tokens as integers, the cache split only when the line has one), plus the
non-usage fields the worker keeps when they have their proper types. The worker therefore
accepts every line ccusage accepts. A skipped line travels as a bad record naming the rule, with
only its structure (``redact.structure``: keys, types, usage fields, no text) and its hash.

A counted line's record is small whatever the line's size: the strings it keeps are cut at
``MAX_KEPT_CHARS`` (ids, model and version keep their identity: a cut one ends in the SHA-256 of
the whole value, so two ids still compare as ccusage compares them) and at most
``MAX_TOOL_USES`` tool names of ``MAX_TOOL_NAME_CHARS`` travel. So a usage line is never lost to
the record limit, however long its content or ``cwd``.

Beyond ccusage, one rule of ours: values ClickHouse cannot hold (a timestamp outside 1900–2299,
a token count of 2**40 or more, ``|costUSD|`` of 10**9 or more) are skipped with the reason
``out_of_range``, so that one absurd line cannot stop every insert of its batch. ccusage would add
such values up (wrapping at 2**64 for tokens); our columns' sums cannot overflow within these
bounds (2**40 tokens × 2**23 lines per query still fit UInt64).
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingestor.models import strip_line, tool_use_names
from ingestor.redact import sha256_hex, structure
from ingestor.rows.fast import TOKEN_LIMIT
from ingestor.usage.accept import read_usage_line
from ingestor.usage.verdict import Rejected, UsageLine

__all__ = [
    "MAX_KEPT_CHARS",
    "MAX_TOKENS",
    "MAX_TOOL_NAME_CHARS",
    "MAX_TOOL_USES",
    "bounded",
    "canonical_line",
    "out_of_range",
    "usage_columns",
    "usage_record",
]

MAX_TOKENS = 1 << 40
MAX_COST_USD = 10**9
_MIN_MS = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp() * 1000)
_MAX_MS = int(datetime(2300, 1, 1, tzinfo=UTC).timestamp() * 1000)  # exclusive
_KEEP_STRINGS = ("type", "uuid", "parentUuid", "cwd")  # read by us, not by ccusage
MAX_KEPT_CHARS = 1024
MAX_TOOL_USES = 256
MAX_TOOL_NAME_CHARS = 128
_CUT = "…sha256:"


def usage_record(
    line: bytes, obj: dict[str, Any], offset: int, length: int
) -> tuple[dict[str, Any], str | None]:
    """The record of one JSON-object line, and the error when it travels as a bad line."""
    verdict = read_usage_line(line, obj)
    if verdict is None:  # not a usage line: ccusage ignores it, we keep its metadata
        return {"offset": offset, "length": length, "line": strip_line(obj)}, None
    if isinstance(verdict, Rejected):
        error = f"ccusage skips this line ({verdict.rule.value}): {verdict.detail}"
        field = verdict.detail.split(":", 1)[0] if ":" in verdict.detail else "line"
    elif (reason := out_of_range(verdict)) is not None:
        error = f"value out of the stored range (out_of_range): {reason}"
        field = reason.split(" ", 1)[0]
    else:
        record: dict[str, Any] = {
            "offset": offset,
            "length": length,
            "line": canonical_line(verdict, obj),
        }
        if verdict.usage_limit_reset_ms is not None:
            record["reset_ms"] = verdict.usage_limit_reset_ms
        return record, None
    bad = {"offset": offset, "length": length, "error": error, "field": field}
    return bad | {"sha256": sha256_hex(line), "shape": structure(obj)}, error


def usage_columns(
    usage: UsageLine, obj: dict[str, Any], offset: int, length: int
) -> tuple[Any, ...] | None:
    """An accepted, in-range usage line's ``LINE_COLUMNS`` values (``ingestor/wire.py``): what
    ``lines.column_row`` makes of its ``canonical_line`` record, built from ``usage`` without
    that dict (the watcher's hot path; a test holds both equal), or None where that declines.
    Its strings are bounded, so it always fits an envelope alone."""
    tokens = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )
    write_5m, write_1h = usage.cache_creation_input_tokens, 0
    if usage.ephemeral_5m is not None and usage.ephemeral_1h is not None:
        write_5m, write_1h = usage.ephemeral_5m, usage.ephemeral_1h
    for count in (*tokens, write_5m, write_1h):
        if type(count) is not int or not 0 <= count < TOKEN_LIMIT:
            return None
    sidechain = False if usage.is_sidechain is None else usage.is_sidechain
    api_error = False if usage.is_api_error_message is None else usage.is_api_error_message
    if type(sidechain) is not bool or type(api_error) is not bool:
        return None
    speed = "" if usage.speed is None else usage.speed  # accepted: "standard" or "fast"
    cost = usage.cost_usd
    if cost is not None:
        if type(cost) is int and -TOKEN_LIMIT < cost < TOKEN_LIMIT:
            cost_text: str | None = str(Decimal(cost))
        elif type(cost) is float and math.isfinite(cost):
            cost_text = str(Decimal(repr(cost)))  # fast_rows' spelling of a float
        else:
            return None
    else:
        cost_text = None
    tier, tools = "", []
    raw_message = obj.get("message")
    if isinstance(raw_message, dict):
        names = tool_use_names(raw_message.get("content"))
        tools = [bounded(name, MAX_TOOL_NAME_CHARS) for name in names[:MAX_TOOL_USES]]
        raw_usage = raw_message.get("usage")
        if isinstance(raw_usage, dict) and type(raw_usage.get("service_tier")) is str:
            tier = bounded(raw_usage["service_tier"])
    kept = [bounded(obj[key]) if type(obj.get(key)) is str else "" for key in _KEEP_STRINGS]
    return (
        offset,
        length,
        kept[0],  # type
        _bounded(usage.session_id) or "",
        kept[1],  # uuid
        kept[2],  # parentUuid
        _bounded(usage.request_id) or "",
        _bounded(usage.message_id) or "",
        usage.timestamp_ms,
        sidechain,
        api_error,
        _bounded(usage.model) or "",
        True,
        tokens[0],
        tokens[1],
        tokens[3],
        write_5m,
        write_1h,
        tier,
        speed,
        cost_text,
        0 if usage.usage_limit_reset_ms is None else usage.usage_limit_reset_ms,
        tools,
        kept[3],  # cwd
        _bounded(usage.version) or "",
    )


def bounded(value: str, limit: int = MAX_KEPT_CHARS) -> str:
    """``value``, or when longer than ``limit`` characters its head and the SHA-256 of the
    whole (``limit`` characters in all): distinct values stay distinct."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return value[: max(limit - len(_CUT) - len(digest), 0)] + _CUT + digest


def out_of_range(usage: UsageLine) -> str | None:
    """Why ``usage`` cannot be stored exactly, or None."""
    if not _MIN_MS <= usage.timestamp_ms < _MAX_MS:
        return "timestamp outside 1900-01-01 .. 2299-12-31"
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "ephemeral_5m",
        "ephemeral_1h",
    ):
        value = getattr(usage, name)
        if value is not None and value >= MAX_TOKENS:
            return f"{name} of 2**40 or more"
    if usage.cost_usd is not None and not abs(usage.cost_usd) < MAX_COST_USD:
        return "costUSD of 10**9 or more"
    return None


def canonical_line(usage: UsageLine, obj: dict[str, Any]) -> dict[str, Any]:
    """The stripped line with the fields ccusage read replaced by their read values."""
    line: dict[str, Any] = {
        key: bounded(obj[key]) for key in _KEEP_STRINGS if type(obj.get(key)) is str
    }
    line["timestamp"] = _utc_text(usage.timestamp_ms, obj.get("timestamp"))
    for key, value in (
        ("sessionId", _bounded(usage.session_id)),
        ("version", _bounded(usage.version)),
        ("requestId", _bounded(usage.request_id)),
        ("isSidechain", usage.is_sidechain),
        ("isApiErrorMessage", usage.is_api_error_message),
        ("costUSD", usage.cost_usd),
    ):
        if value is not None:
            line[key] = value
    tokens: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }
    if usage.ephemeral_5m is not None and usage.ephemeral_1h is not None:
        tokens["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage.ephemeral_5m,
            "ephemeral_1h_input_tokens": usage.ephemeral_1h,
        }
    if usage.speed is not None:
        tokens["speed"] = bounded(usage.speed)
    message: dict[str, Any] = {"usage": tokens}
    raw_message = obj.get("message")
    if isinstance(raw_message, dict):
        if names := tool_use_names(raw_message.get("content")):
            message["tool_uses"] = [
                bounded(name, MAX_TOOL_NAME_CHARS) for name in names[:MAX_TOOL_USES]
            ]
        raw_usage = raw_message.get("usage")
        if isinstance(raw_usage, dict) and type(raw_usage.get("service_tier")) is str:
            tokens["service_tier"] = bounded(raw_usage["service_tier"])
    if usage.message_id is not None:
        message["id"] = bounded(usage.message_id)
    if usage.model is not None:
        message["model"] = bounded(usage.model)
    line["message"] = message
    return line


# JavaScript's toISOString, what Claude Code writes: a line accepted with it was read as exactly
# that instant (a valid date, no leap second), so it is its own canonical text.
_ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:[0-5]\d\.\d{3}Z", re.ASCII)


def _utc_text(ms: int, raw: Any) -> str:
    """``ms`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``; the line's own ``raw`` text when it is that
    already (formatting costs ~3 µs a line, a tenth of the watcher's parse)."""
    if type(raw) is str and _ISO_MS_Z.fullmatch(raw) is not None:
        return raw
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _bounded(value: str | None) -> str | None:
    return None if value is None else bounded(value)
