"""A version 2 transcript envelope's ``lines`` (``ingestor/wire.py``) as ``transcript_lines``
columns. Pure: no broker, no ClickHouse.

The watcher sends well-formed lines as one list a column; the worker checks every value of
every column and stores the lines as columns, with no Python object a line (the per-line path,
``rows/fast.py``, cost ~10 µs a line in the worker's profile; a column costs a few
C-level passes). A check runs over a whole column first (the set of its value types, its least
and greatest value); only a column that fails is walked value by value, to name the lines it
fails, which become dead letters while the others are stored.

What a line must be is what ``fast_rows.line_fields`` gives for a line it takes, which is where
the watcher's values come from (``producer/lines.py``): so a watcher's line is stored exactly as
the per-line path would store it (``tests/unit/worker/test_line_columns.py`` holds both equal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import chain, compress
from operator import add, not_
from typing import Any

from ingestor.errors import InvalidRecord
from ingestor.rows.columns import epoch_ms
from ingestor.rows.records import (
    NO_COSTS,
    TRANSCRIPT_COLUMNS,
    file_first_ts,
    session_of,
    usage_costs,
)
from ingestor.wire import LINE_STRINGS, TranscriptSource

__all__ = ["line_columns"]

_U32, _I64, _U64 = 1 << 32, 1 << 63, 1 << 64
_SPEEDS = frozenset({"", "standard", "fast"})
_TOKENS = ("input", "output", "cache_read", "cache_5m", "cache_1h")


def _ints(low: int, high: int) -> tuple[Callable[[list[Any]], bool], Callable[[Any], bool], str]:
    def every(values: list[Any]) -> bool:
        return set(map(type, values)) <= {int} and low <= min(values) and max(values) < high

    def one(value: Any) -> bool:
        return type(value) is int and low <= value < high

    return every, one, f"must be an integer in [{low}, {high})"


def _typed(kind: type) -> tuple[Callable[[list[Any]], bool], Callable[[Any], bool], str]:
    def every(values: list[Any]) -> bool:
        return set(map(type, values)) <= {kind}

    def one(value: Any) -> bool:
        return type(value) is kind

    return every, one, f"must be a {'string' if kind is str else 'boolean'}"


def _every_tools(values: list[Any]) -> bool:
    return set(map(type, values)) <= {list} and set(map(type, chain.from_iterable(values))) <= {str}


def _one_tools(value: Any) -> bool:
    return type(value) is list and all(type(name) is str for name in value)


_STRING, _BOOL = _typed(str), _typed(bool)
_TOKEN = _ints(0, _I64)
# Each column but ``cost``: (every value passes, one value passes, what a value must be).
_CHECKS: dict[str, tuple[Callable[[list[Any]], bool], Callable[[Any], bool], str]] = {
    "offset": _ints(0, _U64),
    "length": _ints(0, _U32),
    "ts": _ints(-_I64, _I64),
    "reset": _ints(-_I64, _I64),
    "sidechain": _BOOL,
    "api_error": _BOOL,
    "usage": _BOOL,
    "speed": (
        lambda values: set(values) <= _SPEEDS,
        lambda value: value in _SPEEDS,
        "must be '', 'standard' or 'fast'",
    ),
    "tools": (_every_tools, _one_tools, "must be a list of strings"),
    **{name: _TOKEN for name in _TOKENS},
}
_CHECKS.update({name: _STRING for name in LINE_STRINGS if name not in _CHECKS})


def _cost(value: Any) -> Decimal | None:
    """A line's ``costUSD`` from its decimal text (None: none); raises ``InvalidRecord``."""
    if value is None:
        return None
    if type(value) is str:
        try:
            cost = Decimal(value)
        except InvalidOperation:
            cost = None
        if cost is not None and cost.is_finite() and abs(cost) < _I64:
            return cost
    raise InvalidRecord("must be decimal text of a finite number below 2**63, or null", "cost")


def line_columns(
    lines: Mapping[str, list[Any]], source: TranscriptSource
) -> tuple[list[Sequence[Any]], list[tuple[int, InvalidRecord]]]:
    """The ``transcript_lines`` columns (``TRANSCRIPT_COLUMNS``' order, time columns in epoch
    milliseconds) of the lines that pass every check, and (index, error) for each that does not
    (the first error of each, in index order)."""
    n = len(lines["offset"])
    bad: dict[int, InvalidRecord] = {}
    for name, (every, one, rule) in _CHECKS.items():
        values = lines[name]
        if values and not every(values):
            for index, value in enumerate(values):
                if not one(value):
                    bad.setdefault(index, InvalidRecord(rule, f"lines.{name}"))
    costs: list[Decimal | None] = [None] * n
    for index in compress(range(n), map(lambda v: v is not None, lines["cost"])):
        try:
            costs[index] = _cost(lines["cost"][index])
        except InvalidRecord as exc:
            bad.setdefault(index, InvalidRecord(exc.reason, "lines.cost"))
    # A line without usage carries none: the per-line path stores zeros and '' for it.
    without = list(map(not_, lines["usage"]))
    for name in (*_TOKENS, "tier", "speed"):
        if any(compress(lines[name], without)):
            for index in compress(range(n), without):
                if lines[name][index]:
                    rule = "must be 0 or '' on a line without usage"
                    bad.setdefault(index, InvalidRecord(rule, f"lines.{name}"))
    if bad:
        keep = [index not in bad for index in range(n)]
        lines = {name: list(compress(values, keep)) for name, values in lines.items()}
        costs = list(compress(costs, keep))
        n -= len(bad)
    return _columns(lines, costs, source, n), sorted(bad.items())


def _columns(
    lines: Mapping[str, list[Any]], cost_usd: list[Decimal | None], source: TranscriptSource, n: int
) -> list[Sequence[Any]]:
    """``line_columns``' columns of lines that passed."""
    usage, model, speed = lines["usage"], lines["model"], lines["speed"]
    inputs, outputs, read = lines["input"], lines["output"], lines["cache_read"]
    write_5m, write_1h = lines["cache_5m"], lines["cache_1h"]
    creation = list(map(add, write_5m, write_1h))
    auto, has_cost, calculated, missing = ([value] * n for value in NO_COSTS)
    for i in compress(range(n), usage):
        tokens = (inputs[i], outputs[i], creation[i], read[i], write_5m[i], write_1h[i])
        auto[i], has_cost[i], calculated[i], missing[i] = usage_costs(
            model[i], tokens, speed[i], cost_usd[i]
        )
    by_name: dict[str, Sequence[Any]] = {
        "source_file": [source.file] * n,
        "source_generation": [source.generation] * n,
        "source_offset": lines["offset"],
        "source_length": lines["length"],
        "file_first_ts": [epoch_ms(file_first_ts(source.first_ts))] * n,
        "project": [source.project] * n,
        "dedup_scope": [source.scope] * n,
        "session_id": [session_of(source.file)] * n,
        "line_session_id": lines["session"],
        "line_type": lines["type"],
        "uuid": lines["uuid"],
        "parent_uuid": lines["parent"],
        "request_id": lines["request"],
        "message_id": lines["message"],
        "timestamp": lines["ts"],
        "is_sidechain": list(map(int, lines["sidechain"])),
        "is_api_error": list(map(int, lines["api_error"])),
        "model": model,
        "has_usage": list(map(int, usage)),
        "input_tokens": inputs,
        "output_tokens": outputs,
        "cache_creation_tokens": creation,
        "cache_read_tokens": read,
        "cache_creation_5m": write_5m,
        "cache_creation_1h": write_1h,
        "service_tier": lines["tier"],
        "speed": speed,
        "cost_usd": auto,
        "has_cost_usd": has_cost,
        "cost_calculated": calculated,
        "price_missing": missing,
        "usage_limit_reset_ms": lines["reset"],
        # Tuples, not lists: Python's collector stops tracking them (``rows.py`` says why).
        "tool_uses": list(map(tuple, lines["tools"])),
        "cwd": lines["cwd"],
        "version": lines["version"],
    }
    return [by_name[name] for name in TRANSCRIPT_COLUMNS]
