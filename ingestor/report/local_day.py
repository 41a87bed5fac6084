"""A SQL expression for an instant's calendar day in an IANA zone, as Python's ``zoneinfo`` cuts
it (``usage.reports_core.local_date``). Pure.

Reports sum usage per local day in ClickHouse; its own time-zone database could cut a day
elsewhere than the Python one the rest of the reports (and the parity tests) use. So the zone's
UTC offsets are read here, for the UTC days that hold data only, and handed to ClickHouse as a
piecewise constant offset: the day is ``floor((ms + offset) / 86400000)`` days after 1970-01-01.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["EPOCH_ORDINAL", "day_of", "local_day_sql"]

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_S = 86_400


def _offset_s(zone: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, zone).utcoffset()
    return 0 if offset is None else int(offset // timedelta(seconds=1))


def _offsets(zone: ZoneInfo, utc_days: Iterable[int]) -> list[tuple[int, int]]:
    """``(first second, offset)`` pieces, ascending, that hold on every given UTC day."""
    points: list[tuple[int, int]] = []
    for day in sorted(set(utc_days)):
        start, end = day * _DAY_S, (day + 1) * _DAY_S - 1
        first, last = _offset_s(zone, start), _offset_s(zone, end)
        points.append((start, first))
        while first != last:  # a transition in this day: find its first second
            low, high = start, end  # offset(low) == first, offset(high) != first
            while high - low > 1:
                middle = (low + high) // 2
                if _offset_s(zone, middle) == first:
                    low = middle
                else:
                    high = middle
            start, first = high, _offset_s(zone, high)
            points.append((start, first))
    merged: list[tuple[int, int]] = []
    for second, offset in points:
        if not merged or merged[-1][1] != offset:
            merged.append((second, offset))
    return merged


def local_day_sql(column_ms: str, zone: ZoneInfo, utc_days: Iterable[int]) -> str:
    """The local day number (days since 1970-01-01 in ``zone``) of ``column_ms`` (Int64 epoch
    milliseconds), exact for instants on the given UTC days (floor of ms / 86400000)."""
    pieces = _offsets(zone, utc_days) or [(0, 0)]
    if len(pieces) == 1:
        offset_ms = f"{pieces[0][1] * 1000}"
    else:
        branches = [
            f"{column_ms} < {pieces[i + 1][0] * 1000}, {pieces[i][1] * 1000}"
            for i in range(len(pieces) - 1)
        ]
        offset_ms = f"multiIf({', '.join(branches)}, {pieces[-1][1] * 1000})"
    shifted = f"({column_ms} + {offset_ms})"
    return f"intDiv({shifted} - if({shifted} < 0, 86399999, 0), 86400000)"


def day_of(number: int) -> date:
    """The date ``local_day_sql`` numbered."""
    return date.fromordinal(EPOCH_ORDINAL + number)
