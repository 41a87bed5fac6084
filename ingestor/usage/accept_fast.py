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

import re
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
# Below this many brackets (strings included) no nesting reaches serde's 128 levels.
_BRACKET_BOUND: Final = 128
_MS_PER_DAY: Final = 86_400_000
# parse_ts_timestamp's commonest spelling; ASCII digits only, as the Rust reads them.
_TS_MILLIS_Z: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"
)
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# A frozen dataclass's __init__ sets each field through object.__setattr__; filling the slots
# directly builds the same value in half the time (a fifth of the whole budget otherwise).
_NEW: Final = object.__new__
_SET: Final = tuple(UsageLine.__dict__[name].__set__ for name in UsageLine.__slots__)


def null_field(line: bytes) -> str | None:
    """``scan.unsupported_null_field`` with the byte walks done by ``rfind``: the same answer."""
    index = line.find(b":null")
    while index != -1:
        end = line.rfind(_QUOTE, 0, index)
        if end > 0:
            start = line.rfind(_QUOTE, 0, end)
            if start != -1 and (field := line[start + 1 : end]) in NULLABLE_FIELDS:
                return field.decode()
        index = line.find(b":null", index + 5)
    return None


def _timestamp_ms(value: str) -> int | None:
    """``parse_ts_timestamp``; ``YYYY-MM-DDTHH:MM:SS.mmmZ`` without its digit-by-digit walk."""
    if len(value) != 24 or _TS_MILLIS_Z.fullmatch(value) is None:
        return parse_ts_timestamp(value)
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    hour, minute, second = int(value[11:13]), int(value[14:16]), int(value[17:19])
    if hour > 23 or minute > 59 or second > 59 or not 1 <= month <= 12 or day == 0:
        return None
    leap = month == 2 and (year % 4 == 0 and year % 100 != 0 or year % 400 == 0)
    if day > _DAYS_IN_MONTH[month] + leap:
        return None
    # scan._days_from_civil, inlined.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    days = era * 146_097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100
    days += day_of_year - 719_468
    seconds = (hour * 60 + minute) * 60 + second
    return days * _MS_PER_DAY + seconds * 1000 + int(value[20:23])


def _u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= _U64_MAX


def _optional_str(value: object) -> bool:
    """``Option<String>`` holding a non-empty string or nothing (``""`` is a rejection)."""
    return value is None or (type(value) is str and value != "")


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
    session_id, version, request_id = get("sessionId"), get("version"), get("requestId")
    timestamp, cost, sidechain = get("timestamp"), get("costUSD"), get("isSidechain")
    api_error = None if daily else get("isApiErrorMessage")
    model, message_id = message.get("model"), message.get("id")
    if not (
        type(timestamp) is str
        and _optional_str(session_id)
        and _optional_str(request_id)
        and _optional_str(model)
        and _optional_str(message_id)
        and (version is None or (type(version) is str and is_semver_prefix(version)))
        and (sidechain is None or type(sidechain) is bool)
        and (api_error is None or type(api_error) is bool)
    ):
        return DECLINED
    if cost is not None:
        if type(cost) is int:
            cost = float(cost)
        elif type(cost) is not float or cost in (float("inf"), float("-inf")):
            return DECLINED
    input_tokens, output_tokens = usage.get("input_tokens"), usage.get("output_tokens")
    cache_write = usage.get("cache_creation_input_tokens", 0)
    cache_read = usage.get("cache_read_input_tokens", 0)
    speed, cache = usage.get("speed"), usage.get("cache_creation")
    if not (
        _u64(input_tokens)
        and _u64(output_tokens)
        and _u64(cache_write)
        and _u64(cache_read)
        and (speed is None or (type(speed) is str and speed in _SPEEDS))
    ):
        return DECLINED
    ephemeral_5m = ephemeral_1h = None
    if cache is not None:
        if type(cache) is not dict:
            return DECLINED
        ephemeral_5m = cache.get("ephemeral_5m_input_tokens", 0)
        ephemeral_1h = cache.get("ephemeral_1h_input_tokens", 0)
        if not (_u64(ephemeral_5m) and _u64(ephemeral_1h)):
            return DECLINED
    timestamp_ms = _timestamp_ms(timestamp)
    if timestamp_ms is None:
        return DECLINED
    # The bytes last: the cheap type checks above decline most odd lines first.
    if null_field(line) is not None:
        return DECLINED
    if line.count(b"{") + line.count(b"[") >= _BRACKET_BOUND:
        return DECLINED
    try:
        if orjson.dumps(obj) != line:
            return DECLINED
    except orjson.JSONEncodeError:
        return DECLINED
    reset_ms = None if api_error is not True else usage_limit_reset_ms(line, True)
    verdict: UsageLine = _NEW(UsageLine)
    for setter, value in zip(
        _SET,
        (
            timestamp_ms,
            session_id,
            version,
            request_id,
            message_id,
            model,
            input_tokens,
            output_tokens,
            cache_write,
            cache_read,
            ephemeral_5m,
            ephemeral_1h,
            speed,
            cost,
            sidechain,
            api_error,
            reset_ms,
        ),
        strict=True,
    ):
        setter(verdict, value)
    return verdict
