"""``read_usage_line``'s hot path: the common line's verdict without the general machinery. Pure.

``fast_usage_line(line, obj, daily)`` either returns ``DECLINED`` or exactly what
``read_usage_line_general`` returns for the same arguments. It takes two shapes:

* not a usage line: ``obj`` is a dict whose ``message`` is missing, not an object or array, or
  an object without ``usage`` (daily: and no ``data`` object or array either) → None, with no
  byte scan at all;
* a valid usage line in orjson's own spelling: ``orjson.dumps(obj) == line``, which proves
  what the general path reads from the bytes — no repeated key anywhere, no ``-0``, no
  escaped or spaced key, the ``"usage":{`` marker present (``usage`` is an object) — and
  leaves the ``:null`` scan and a nesting bound to check. Every field must have its exact
  JSON type (``type(x) is int``: a bool is not a token count), the usual timestamp, a semver
  version and no empty id → the same ``UsageLine``.

Everything else is declined, rejections included: the general path decides, and names the rule.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Final, Literal

import orjson

from ingestor.usage.scan import (
    NULLABLE_FIELDS,
    is_semver_prefix,
    parse_ts_timestamp,
    usage_limit_reset_ms,
)
from ingestor.usage.verdict import UsageLine

__all__ = ["DECLINED", "Declined", "fast_usage_line", "null_field"]


class Declined(Enum):
    """The fast path is not sure: take the general path."""

    DECLINED = "declined"


DECLINED: Final = Declined.DECLINED

_U64_MAX: Final = 2**64 - 1
_QUOTE: Final = b'"'
_SPEEDS: Final = frozenset({"standard", "fast"})
_INFINITIES: Final = (float("inf"), float("-inf"))
# Below this many brackets (strings included) no nesting reaches serde's 128 levels.
_BRACKET_BOUND: Final = 128
# The parts of ``…THH:MM:SS.mmmZ`` after the hour, in ASCII digits only, as the Rust reads them.
_MINUTE_SECOND_MS: Final = {
    f"{m:02d}:{s:02d}": (m * 60 + s) * 1000 for m in range(60) for s in range(60)
}
_MILLIS: Final = {f"{ms:03d}": ms for ms in range(1000)}
_HOUR_CACHE_SIZE: Final = 65_536
_HOUR_MS: dict[str, int] = {}

# A frozen dataclass's __init__ sets each field through object.__setattr__; filling the slots
# directly builds the same value in half the time (a fifth of the whole budget otherwise).
_NEW: Final = object.__new__
_SET: Final = tuple(UsageLine.__dict__[name].__set__ for name in UsageLine.__slots__)


def null_field(line: bytes) -> str | None:
    """``scan.unsupported_null_field`` with the byte walks done by ``rfind``: the same answer."""
    find, rfind = line.find, line.rfind
    index = find(b":null")
    while index != -1:
        end = rfind(_QUOTE, 0, index)
        if end > 0:
            start = rfind(_QUOTE, 0, end)
            if start != -1 and (field := line[start + 1 : end]) in NULLABLE_FIELDS:
                return field.decode()
        index = find(b":null", index + 5)
    return None


def _timestamp_ms(value: str) -> int | None:
    """``parse_ts_timestamp``, with ``YYYY-MM-DDTHH:MM:SS.mmmZ`` read from three small tables.

    The hour's epoch ms is ``parse_ts_timestamp`` of ``YYYY-MM-DDTHH:00:00.000Z`` (it checks the
    date, the hour and the digits), kept per hour: a transcript's lines share a handful of hours.
    """
    if len(value) != 24 or value[19] != "." or value[23] != "Z" or value[13] != ":":
        return parse_ts_timestamp(value)
    minute_second = _MINUTE_SECOND_MS.get(value[14:19])
    millis = _MILLIS.get(value[20:23])
    if minute_second is None or millis is None:
        return parse_ts_timestamp(value)
    hour = value[:13]
    hour_ms = _HOUR_MS.get(hour)
    if hour_ms is None:
        hour_ms = parse_ts_timestamp(hour + ":00:00.000Z")
        if hour_ms is None:
            return None
        if len(_HOUR_MS) >= _HOUR_CACHE_SIZE:
            _HOUR_MS.clear()
        _HOUR_MS[hour] = hour_ms
    return hour_ms + minute_second + millis


def _not_usage(obj: dict[str, Any], daily: bool) -> bool | None:
    """True: no ``message.usage`` (None). False: a usage candidate. None: unsure."""
    message = obj.get("message")
    if type(message) is dict:
        if "usage" in message:
            return False
    elif type(message) is list:
        return None
    if not daily:
        return True
    data = obj.get("data")
    if type(data) is dict or type(data) is list:
        return None  # maybe an agent-progress line: data.message.message.usage
    return True


def fast_usage_line(
    line: bytes, obj: object, daily: bool
) -> UsageLine | Literal[Declined.DECLINED] | None:
    """``read_usage_line_general(line, obj, daily=daily)``, or ``DECLINED`` when unsure.

    ``obj`` must be ``orjson.loads(line)``. Never raises.
    """
    if type(obj) is not dict:
        return DECLINED
    not_usage = _not_usage(obj, daily)
    if not_usage is None:
        return DECLINED
    if not_usage:
        return None
    return _usage_line(line, obj, daily)


def _usage_line(line: bytes, obj: dict[str, Any], daily: bool) -> UsageLine | Declined:
    get = obj.get
    message = obj["message"]
    usage = message["usage"]
    if type(usage) is not dict:
        return DECLINED
    # Option<String> fields: absent, null or a non-empty string ("" is a rejection).
    session_id, request_id = get("sessionId"), get("requestId")
    model, message_id = message.get("model"), message.get("id")
    for text in (session_id, request_id, model, message_id):
        if text is not None and (type(text) is not str or text == ""):
            return DECLINED
    version, sidechain = get("version"), get("isSidechain")
    api_error = None if daily else get("isApiErrorMessage")
    if not (
        (version is None or (type(version) is str and is_semver_prefix(version)))
        and (sidechain is None or type(sidechain) is bool)
        and (api_error is None or type(api_error) is bool)
    ):
        return DECLINED
    cost = get("costUSD")
    if cost is not None:
        if type(cost) is int:
            cost = float(cost)
        elif type(cost) is not float or cost in _INFINITIES:
            return DECLINED
    get = usage.get
    input_tokens, output_tokens = get("input_tokens"), get("output_tokens")
    cache_write, cache_read = (
        get("cache_creation_input_tokens", 0),
        get("cache_read_input_tokens", 0),
    )
    cache = get("cache_creation")
    ephemeral_5m = ephemeral_1h = None
    if cache is None:
        counts: tuple[object, ...] = (input_tokens, output_tokens, cache_write, cache_read)
    elif type(cache) is dict:
        ephemeral_5m = cache.get("ephemeral_5m_input_tokens", 0)
        ephemeral_1h = cache.get("ephemeral_1h_input_tokens", 0)
        counts = (input_tokens, output_tokens, cache_write, cache_read, ephemeral_5m, ephemeral_1h)
    else:
        return DECLINED
    for count in counts:  # u64: an int (not a bool) in range
        if type(count) is not int or not 0 <= count <= _U64_MAX:
            return DECLINED
    speed = get("speed")
    if speed is not None and (type(speed) is not str or speed not in _SPEEDS):
        return DECLINED
    timestamp = obj.get("timestamp")
    if type(timestamp) is not str or (timestamp_ms := _timestamp_ms(timestamp)) is None:
        return DECLINED
    # The bytes last: the cheap checks above decline most odd lines first.
    if null_field(line) is not None or line.count(b"{") + line.count(b"[") >= _BRACKET_BOUND:
        return DECLINED
    try:
        if orjson.dumps(obj) != line:
            return DECLINED
    except orjson.JSONEncodeError:
        return DECLINED
    reset_ms = None if api_error is not True else usage_limit_reset_ms(line, True)
    verdict: UsageLine = _NEW(UsageLine)
    (
        set_timestamp_ms,
        set_session_id,
        set_version,
        set_request_id,
        set_message_id,
        set_model,
        set_input,
        set_output,
        set_cache_write,
        set_cache_read,
        set_5m,
        set_1h,
        set_speed,
        set_cost,
        set_sidechain,
        set_api_error,
        set_reset,
    ) = _SET
    set_timestamp_ms(verdict, timestamp_ms)
    set_session_id(verdict, session_id)
    set_version(verdict, version)
    set_request_id(verdict, request_id)
    set_message_id(verdict, message_id)
    set_model(verdict, model)
    set_input(verdict, input_tokens)
    set_output(verdict, output_tokens)
    set_cache_write(verdict, cache_write)
    set_cache_read(verdict, cache_read)
    set_5m(verdict, ephemeral_5m)
    set_1h(verdict, ephemeral_1h)
    set_speed(verdict, speed)
    set_cost(verdict, cost)
    set_sidechain(verdict, sidechain)
    set_api_error(verdict, api_error)
    set_reset(verdict, reset_ms)
    return verdict
