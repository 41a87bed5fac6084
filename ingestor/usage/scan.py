"""ccusage's byte-level and string-level checks, ported one function each. Pure.

Each function names its origin in ``rust/crates/ccusage/src``; they work on the raw line or on
strings exactly as the Rust does (byte indexes, ASCII digits only), because the JSON parse does
not see what they see (``"usage": {`` vs ``"usage":{``, ``"id":null`` inside a string…).
"""

from __future__ import annotations

import re

__all__ = [
    "NULLABLE_FIELDS",
    "USAGE_MARKER",
    "is_semver_prefix",
    "max_depth",
    "parse_ts_timestamp",
    "unsupported_null_field",
    "usage_limit_reset_ms",
]

USAGE_MARKER = b'"usage":{'

# adapter/claude/mod.rs `is_unsupported_nullable_field`
NULLABLE_FIELDS = frozenset(
    {
        b"id",
        b"cwd",
        b"model",
        b"speed",
        b"costUSD",
        b"version",
        b"sessionId",
        b"requestId",
        b"isApiErrorMessage",
        b"cache_read_input_tokens",
        b"cache_creation_input_tokens",
    }
)
_QUOTE = 0x22
_I64_MAX = 2**63 - 1
_MS_PER_DAY = 86_400_000


def unsupported_null_field(line: bytes) -> str | None:
    """adapter/claude/mod.rs `has_unsupported_null_field`: the field name it trips on, or None.

    A crude scan: for each ``:null`` it walks back to the nearest quote pair, wherever it is
    (inside strings too), and looks the bytes between up in a fixed list.
    """
    offset = 0
    while (index := line.find(b":null", offset)) != -1:
        end = index - 1 if index > 0 else 0
        if line[end] != _QUOTE:
            while end > 0 and line[end] != _QUOTE:
                end -= 1
        if line[end] == _QUOTE:
            start = end - 1 if end > 0 else 0
            while start > 0 and line[start] != _QUOTE:
                start -= 1
            if line[start] == _QUOTE and (field := line[start + 1 : end]) in NULLABLE_FIELDS:
                return field.decode()
        offset = index + 5
    return None


def _digits(raw: bytes) -> int | None:
    """date_utils.rs `parse_digits`: ASCII digits only (no sign, no Unicode digits)."""
    value = 0
    for byte in raw:
        if not 0x30 <= byte <= 0x39:
            return None
        value = value * 10 + byte - 0x30
    return value


def _is_leap(year: int) -> bool:
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def _days_in_month(year: int, month: int) -> int:
    if month in (1, 3, 5, 7, 8, 10, 12):
        return 31
    if month in (4, 6, 9, 11):
        return 30
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 0


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400  # Rust div_euclid: floor for a positive divisor
    year_of_era = year - era * 400
    month_prime = month - 3 if month > 2 else month + 9
    day_of_year = (153 * month_prime + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _tz_offset_minutes(raw: bytes) -> int | None:
    """date_utils.rs `parse_timezone_offset`: ``Z`` or ``±hh:mm`` (00-23, 00-59)."""
    if raw == b"Z":
        return 0
    if len(raw) != 6 or raw[0] not in b"+-" or raw[3] != 0x3A:
        return None
    hours, minutes = _digits(raw[1:3]), _digits(raw[4:6])
    # The 20.0.24 binary refuses hours > 23 or minutes > 59; the v20.0.11 source does not check.
    if hours is None or minutes is None or hours > 23 or minutes > 59:
        return None
    offset = hours * 60 + minutes
    return offset if raw[0] == 0x2B else -offset


def parse_ts_timestamp(value: str) -> int | None:
    """date_utils.rs `parse_ts_timestamp`: epoch ms, or None. Lengths 20/24/25/29 bytes only."""
    raw = value.encode("utf-8")
    size = len(raw)
    if size in (20, 25) and raw[19] in b"Z+-":
        millis: int | None = 0
        tz_start = 19
    elif size in (24, 29) and raw[19] == 0x2E:
        millis = _digits(raw[20:23])
        tz_start = 23
    else:
        return None
    if millis is None:
        return None
    if raw[4] != 0x2D or raw[7] != 0x2D or raw[10] != 0x54 or raw[13] != 0x3A or raw[16] != 0x3A:
        return None
    parts = [_digits(raw[a:b]) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))]
    year, month, day, hour, minute, second = parts
    if year is None or month is None or day is None:
        return None
    if hour is None or minute is None or second is None:
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = _tz_offset_minutes(raw[tz_start:])
    if offset is None:
        return None
    if not 1 <= month <= 12 or day == 0 or day > _days_in_month(year, month):
        return None
    days = _days_from_civil(year, month, day)
    return (
        days * _MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset * 60_000
    )


def is_semver_prefix(value: str) -> bool:
    """adapter/claude/mod.rs `is_semver_prefix`: ``\\d+\\.\\d+\\.\\d`` at the start, ASCII only."""
    return _SEMVER_PREFIX.match(value) is not None


_SEMVER_PREFIX = re.compile(r"[0-9]+\.[0-9]+\.[0-9]", re.ASCII)


def usage_limit_reset_ms(line: bytes, is_api_error_message: bool | None) -> int | None:
    """adapter/claude/mod.rs `usage_limit_reset_time_from_line_bytes`: ``…reached|<unix s>``."""
    if is_api_error_message is not True:
        return None
    marker = line.find(b"Claude AI usage limit reached")
    if marker == -1:
        return None
    bar = line.find(b"|", marker)
    if bar == -1:
        return None
    match = _DIGITS.match(line, bar + 1)
    if match is None:
        return None
    seconds = int(match.group())
    if seconds <= 0 or seconds > _I64_MAX or seconds * 1000 > _I64_MAX:
        return None
    return seconds * 1000


_DIGITS = re.compile(rb"[0-9]+")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def max_depth(line: bytes) -> int:
    """How deeply arrays/objects nest (strings skipped); serde_json refuses 128 when it buffers."""
    depth = deepest = 0
    for byte in _STRING.sub(b"", line):
        if byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
