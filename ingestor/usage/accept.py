"""Which transcript lines ccusage 20.0.24 counts as usage, and why it skips the others. Pure.

``read_usage_line`` replays ccusage's per-line pipeline in its order (``adapter/claude/mod.rs``
``read_usage_file``; ``daily.rs`` ``read_daily_usage_file`` for ``daily=True``):

1. the literal ``"usage":{`` marker must be in the bytes;
2. the ``:null`` byte scan must not hit a listed field name;
3. serde_json must fill ``UsageEntry`` (daily: the untagged ``DailyUsageLine``);
4. ``timestamp`` must pass ``parse_ts_timestamp``;
5. ``is_valid_usage_entry``: semver-prefixed version, no empty ids or model.

Lines without ``message.usage`` (user turns, summaries, ``usage`` only inside ``toolUseResult``)
are not usage lines: None, as ccusage skips them silently. A usage line ccusage skips is a
``Rejected`` naming the rule. ``docs/ccusage-acceptance.md`` maps every rule to its source.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ingestor.usage.accept_fast import DECLINED, fast_usage_line
from ingestor.usage.scan import (
    NULLABLE_FIELDS,
    USAGE_MARKER,
    is_semver_prefix,
    max_depth,
    parse_ts_timestamp,
    unsupported_null_field,
    usage_limit_reset_ms,
)
from ingestor.usage.serde import (
    OPTIONAL,
    REQUIRED,
    Exact,
    SerdeError,
    Spec,
    boolean,
    decode,
    f64,
    option,
    parse_exact,
    speed,
    string,
    struct,
    u64,
)
from ingestor.usage.verdict import Rejected, Rule, UsageLine

__all__ = ["Rejected", "Rule", "UsageLine", "read_usage_line", "read_usage_line_general"]

# src/types.rs, fields in declaration order (a derived struct also reads a JSON array).
_CACHE_CREATION: Final[Spec] = (
    ("ephemeral_5m_input_tokens", u64, 0),
    ("ephemeral_1h_input_tokens", u64, 0),
)
_USAGE: Final[Spec] = (
    ("input_tokens", u64, REQUIRED),
    ("output_tokens", u64, REQUIRED),
    ("cache_creation_input_tokens", u64, 0),
    ("cache_read_input_tokens", u64, 0),
    ("speed", option(speed), OPTIONAL),
    ("cache_creation", option(struct(_CACHE_CREATION)), None),
)
_MESSAGE: Final[Spec] = (
    ("usage", struct(_USAGE), REQUIRED),
    ("model", option(string), OPTIONAL),
    ("id", option(string), OPTIONAL),
)
_ENTRY: Final[Spec] = (
    ("sessionId", option(string), OPTIONAL),
    ("timestamp", string, REQUIRED),
    ("version", option(string), OPTIONAL),
    ("message", struct(_MESSAGE), REQUIRED),
    ("costUSD", option(f64), OPTIONAL),
    ("requestId", option(string), OPTIONAL),
    ("isApiErrorMessage", option(boolean), OPTIONAL),
    ("isSidechain", option(boolean), OPTIONAL),
)
# adapter/claude/daily.rs: `DailyUsageEntry` has no isApiErrorMessage and another field order.
_DAILY_ENTRY: Final[Spec] = (
    ("timestamp", string, REQUIRED),
    ("message", struct(_MESSAGE), REQUIRED),
    ("version", option(string), OPTIONAL),
    ("sessionId", option(string), OPTIONAL),
    ("costUSD", option(f64), OPTIONAL),
    ("requestId", option(string), OPTIONAL),
    ("isSidechain", option(boolean), OPTIONAL),
)
_PROGRESS_MESSAGE: Final[Spec] = (
    ("timestamp", string, REQUIRED),
    ("message", struct(_MESSAGE), REQUIRED),
    ("costUSD", option(f64), OPTIONAL),
    ("requestId", option(string), OPTIONAL),
    ("isSidechain", option(boolean), OPTIONAL),
)
# The 20.0.24 binary also reads the progress line's top-level sessionId (v20.0.11 does not);
# its place in array form is a guess (after data).
_PROGRESS: Final[Spec] = (
    ("data", struct((("message", struct(_PROGRESS_MESSAGE), REQUIRED),)), REQUIRED),
    ("sessionId", option(string), OPTIONAL),
)

_NEG_ZERO: Final = (b":-0", b",-0", b"[-0", b" -0", b"\t-0", b"\r-0")
_SPACED_COLON: Final = (b'" :', b'"\t:', b'"\r:')
_SERDE_MAX_DEPTH: Final = 128
_NULLABLE_NAMES: Final = frozenset(name.decode() for name in NULLABLE_FIELDS)
_UNSET: Final[Any] = object()
_MISSING: Final[Any] = object()


def read_usage_line(
    line: bytes, obj: object = _UNSET, *, daily: bool = False
) -> UsageLine | Rejected | None:
    """ccusage's verdict on one transcript line (no trailing newline; a ``\\r`` is kept).

    ``obj`` is ``orjson.loads(line)`` when the caller already has it; the bytes still decide
    what orjson cannot see (duplicate keys, ``-0``, the marker, the null scan). ``daily=False``
    is ``load_entries`` (session/weekly/monthly/blocks), the product rule; ``daily=True`` is
    the daily report's own loader. Never raises on any input.

    A line that is not JSON is None without the ``"usage":{`` marker (ccusage never parses it)
    and ``Rejected(INVALID_JSON)`` with it.

    With ``obj`` given, ``accept_fast`` answers the common lines (a user turn, a valid usage
    line in orjson's spelling); whatever it declines goes to ``read_usage_line_general``.
    """
    if obj is not _UNSET:
        verdict = fast_usage_line(line, obj, daily)
        if verdict is not DECLINED:
            return verdict
    return read_usage_line_general(line, obj, daily=daily)


def read_usage_line_general(
    line: bytes, obj: object = _UNSET, *, daily: bool = False
) -> UsageLine | Rejected | None:
    """``read_usage_line`` without the fast path: the definition the fast path is held to."""
    marker = USAGE_MARKER in line
    exact = None
    if obj is _UNSET:
        if not marker and b'"usage"' not in line and b"\\u" not in line:
            return None
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            exact = parse_exact(line)
            if exact is None:
                return Rejected(Rule.INVALID_JSON, "not one serde_json value") if marker else None
            obj = exact.tree
    if not _has_usage(obj, daily):
        return None
    if not marker:
        return Rejected(Rule.NO_USAGE_MARKER, 'no literal "usage":{ bytes')
    if (field := unsupported_null_field(line)) is not None:
        return Rejected(Rule.NULL_FIELD, f"{field}: null")
    survey = _survey(obj)
    if exact is None and _needs_exact(line, obj, survey[0]):
        exact = parse_exact(line)
        if exact is None:
            return Rejected(Rule.INVALID_JSON, "not one serde_json value")
        obj = exact.tree
        survey = _survey(obj)
    if b"null" in line and (strict := _whole_line_checks(exact, survey)) is not None:
        return strict
    try:
        entry = _decode_daily(line, obj, exact) if daily else decode(obj, _ENTRY)
    except SerdeError as error:
        return Rejected(error.rule, error.detail)
    return _validate(line, entry, daily)


def _whole_line_checks(exact: Exact | None, survey: tuple[int, str | None, int]) -> Rejected | None:
    """The 20.0.24 binary's extra pass over any line holding the bytes ``null`` (not in v20.0.11).

    It reads the whole line as one strict tree: a repeated key in any object, a string that is
    not valid Unicode, a number past f64 or nesting past 128 drops the line, and so does a
    listed field name (``is_unsupported_nullable_field``) holding null at any depth, whatever
    the spacing (``"id" : null``). Without ``exact`` the line had none of the first three.
    """
    if exact is not None:
        if exact.duplicate:
            return Rejected(Rule.DUPLICATE_FIELD, "line: a key repeats (line holds null)")
        if exact.bad_string:
            return Rejected(Rule.INVALID_STRING, "line: a string is not valid Unicode (null)")
        if exact.out_of_range:
            return Rejected(Rule.NUMBER_OUT_OF_RANGE, "line: a number overflows f64 (null)")
    _, null_field, depth = survey
    if depth >= _SERDE_MAX_DEPTH:
        return Rejected(Rule.TOO_DEEP, "line: nesting past 128 (line holds null)")
    if null_field is not None:
        return Rejected(Rule.NULL_FIELD, f"{null_field}: null (nested or spaced)")
    return None


def _compact_key_count(line: bytes) -> int | None:
    """Keys written ``"…":`` in the bytes, or None when spacing or backslashes hide the count.

    A ``"`` inside a string is always escaped, so ``":`` outside ``\\":`` ends a key.
    """
    if any(pattern in line for pattern in _SPACED_COLON):
        return None
    escaped = line.count(b'\\":')
    if escaped and b"\\\\" in line:
        return None
    return line.count(b'":') - escaped


def _survey(obj: object) -> tuple[int, str | None, int]:
    """(keys in every object, a listed field holding null, deepest nesting) of a parsed tree."""
    keys = 0
    null_field = None
    deepest = 0
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            keys += len(node)
            for key, value in node.items():
                if value is None:
                    if null_field is None and key in _NULLABLE_NAMES:
                        null_field = key
                elif isinstance(value, dict | list):
                    stack.append((value, depth + 1))
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in node if isinstance(item, dict | list))
    return keys, null_field, deepest


def _field(value: object, spec: Spec, name: str) -> Any:
    """A struct field as serde would find it: by key in an object, by position in an array."""
    if isinstance(value, dict):
        return value.get(name, _MISSING)
    if isinstance(value, list):
        index = next(i for i, (n, _, _) in enumerate(spec) if n == name)
        return value[index] if index < len(value) else _MISSING
    return _MISSING


def _has_usage(obj: object, daily: bool) -> bool:
    top = _DAILY_ENTRY if daily else _ENTRY
    message = _field(obj, top, "message")
    if message is not _MISSING and _field(message, _MESSAGE, "usage") is not _MISSING:
        return True
    if not daily:
        return False
    data = _field(obj, _PROGRESS, "data")
    inner = _field(data, (("message", string, REQUIRED),), "message")
    message = _field(inner, _PROGRESS_MESSAGE, "message")
    return _field(message, _MESSAGE, "usage") is not _MISSING


def _needs_exact(line: bytes, obj: object, keys: int) -> bool:
    """Cheap byte checks for what orjson hides; True sends the line to the exact parse.

    ``keys`` is how many keys orjson kept; fewer than the bytes spell means one repeats.
    """
    if any(pattern in line for pattern in _NEG_ZERO):
        return True
    return not isinstance(obj, dict) or _compact_key_count(line) != keys


def _decode_daily(line: bytes, obj: object, exact: Any) -> dict[str, Any]:
    """``DailyUsageLine`` is untagged: serde buffers the whole line, then tries each variant."""
    if exact is not None and exact.bad_string:
        raise SerdeError(Rule.INVALID_STRING, "line: a string is not valid Unicode (buffered)")
    if exact is not None and exact.out_of_range:
        raise SerdeError(Rule.NUMBER_OUT_OF_RANGE, "line: a number overflows f64 (buffered)")
    if line.count(b"[") + line.count(b"{") >= _SERDE_MAX_DEPTH and (
        max_depth(line) >= _SERDE_MAX_DEPTH
    ):
        raise SerdeError(Rule.TOO_DEEP, "line: nesting past serde_json's recursion limit")
    try:
        return decode(obj, _DAILY_ENTRY)
    except SerdeError as direct:
        try:
            progress_line = decode(obj, _PROGRESS)
        except SerdeError as agent:
            message = _field(obj, _DAILY_ENTRY, "message")
            if message is not _MISSING and _field(message, _MESSAGE, "usage") is not _MISSING:
                raise direct from None
            raise agent from None
        progress = progress_line["data"]["message"]
        return dict(progress, version=None, sessionId=progress_line["sessionId"])


def _validate(line: bytes, entry: dict[str, Any], daily: bool) -> UsageLine | Rejected:
    timestamp_ms = parse_ts_timestamp(entry["timestamp"])
    if timestamp_ms is None:
        return Rejected(Rule.BAD_TIMESTAMP, "timestamp: not a parse_ts_timestamp spelling")
    message = entry["message"]
    version = entry["version"]
    if version is not None and not is_semver_prefix(version):
        return Rejected(Rule.VERSION_NOT_SEMVER, "version: no N.N.N prefix")
    if entry["sessionId"] == "":
        return Rejected(Rule.EMPTY_SESSION_ID, "sessionId: empty")
    if entry["requestId"] == "":
        return Rejected(Rule.EMPTY_REQUEST_ID, "requestId: empty")
    if message["id"] == "":
        return Rejected(Rule.EMPTY_MESSAGE_ID, "message.id: empty")
    if message["model"] == "":
        return Rejected(Rule.EMPTY_MODEL, "message.model: empty")
    usage = message["usage"]
    cache = usage["cache_creation"]
    is_api_error = None if daily else entry["isApiErrorMessage"]
    return UsageLine(
        timestamp_ms=timestamp_ms,
        session_id=entry["sessionId"],
        version=version,
        request_id=entry["requestId"],
        message_id=message["id"],
        model=message["model"],
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_creation_input_tokens=usage["cache_creation_input_tokens"],
        cache_read_input_tokens=usage["cache_read_input_tokens"],
        ephemeral_5m=None if cache is None else cache["ephemeral_5m_input_tokens"],
        ephemeral_1h=None if cache is None else cache["ephemeral_1h_input_tokens"],
        speed=usage["speed"],
        cost_usd=entry["costUSD"],
        is_sidechain=entry["isSidechain"],
        is_api_error_message=is_api_error,
        usage_limit_reset_ms=None if daily else usage_limit_reset_ms(line, is_api_error),
    )
