"""``ingestor verify --topics``: ClickHouse against what the topics say, record by record.

SDK events and ledger entries have no files to recompute from: their source is the topic. A
range of a topic is read again and turned into rows exactly as the worker turns it
(``worker/replay.replay_rows``, no side effects); each row must then be in its table once, under
its key, with the same values:

* **missing**: a row whose key the table does not hold (a record lost between Kafka and
  ClickHouse);
* **doubled**: a key held more than once in a table that stores each id once (``events``,
  ``tool_calls``, ``agent_steps``, ``token_usage_ledger``: the sink never inserts a stored id);
  tables whose copies replace themselves (``transcript_lines``, ``dead_letters``) are checked
  for presence only;
* **differs**: the stored values of the columns that make the totals (tokens, cost) are not the
  record's.

``rollup_differences`` checks the other half: every events rollup (``hourly_metrics``,
``daily_metrics``, ``user_usage_daily``) equals the same aggregation over ``events``, on the days
both still keep (``events`` keeps 90 days).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ingestor.clickhouse.engine import ClickHouse, quote_string
from ingestor.clickhouse.write import ID_COLUMNS

__all__ = ["ROW_KEYS", "TableCheck", "TopicCheck", "check_rows", "rollup_differences"]

Row = Mapping[str, Any]

# How each table names a row, and the columns whose values must match (the totals').
ROW_KEYS: Mapping[str, tuple[str, ...]] = {
    "transcript_lines": ("source_file", "source_generation", "source_offset"),
    "dead_letters": (
        "kind", "source_file", "source_generation", "source_offset", "topic", "partition",
        "offset", "idx",
    ),
    **{table: (column,) for table, column in ID_COLUMNS.items()},
}  # fmt: skip
_ONCE = frozenset(ID_COLUMNS)
_VALUES: Mapping[str, tuple[str, ...]] = {
    "transcript_lines": ("input_tokens", "output_tokens", "cache_creation_tokens",
                         "cache_read_tokens", "cost_usd"),
    "events": ("event_type", "tokens_input", "tokens_output", "tokens_cache_read",
               "tokens_cache_write", "cost_usd"),
    "tool_calls": ("tool_name", "cost_usd"),
    "agent_steps": ("step_number", "tokens_input", "tokens_output", "cost_usd"),
    "token_usage_ledger": ("vendor_cost", "credits_deducted", "gross_margin_usd",
                           "input_tokens", "output_tokens"),
}  # fmt: skip
_CHUNK = 5_000  # keys a lookup


@dataclass
class TableCheck:
    """One table's verdict over the rows checked so far; examples keep the first few keys."""

    rows: int = 0
    stored: int = 0
    missing: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    missing_n: int = 0
    doubled_n: int = 0
    differs_n: int = 0

    @property
    def ok(self) -> bool:
        return self.missing_n == self.doubled_n == self.differs_n == 0

    def merge(self, other: TableCheck, keep: int) -> None:
        self.rows += other.rows
        self.stored += other.stored
        for name in ("missing", "doubled", "differs"):
            setattr(self, f"{name}_n", getattr(self, f"{name}_n") + getattr(other, f"{name}_n"))
            mine: list[str] = getattr(self, name)
            mine.extend(getattr(other, name)[: max(0, keep - len(mine))])

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TableCheck:
        return cls(**{k: body[k] for k in cls.__dataclass_fields__})


@dataclass
class TopicCheck:
    """Per table, over every range checked."""

    tables: dict[str, TableCheck] = field(default_factory=dict)
    messages: int = 0

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables.values())

    def merge(self, other: TopicCheck, keep: int = 20) -> None:
        self.messages += other.messages
        for table, check in other.tables.items():
            self.tables.setdefault(table, TableCheck()).merge(check, keep)

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "tables": {t: c.as_json() for t, c in self.tables.items()},
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TopicCheck:
        tables = {t: TableCheck.from_json(c) for t, c in body["tables"].items()}
        return cls(tables=tables, messages=int(body["messages"]))

    def lines_out(self, show: int) -> list[str]:
        out = [f"{self.messages:,} messages read again from the topics"]
        for table, c in sorted(self.tables.items()):
            out.append(
                f"  {table}: {c.rows:,} rows, {c.stored:,} stored, {c.missing_n:,} missing, "
                f"{c.doubled_n:,} doubled, {c.differs_n:,} with other values"
            )
            for name in ("missing", "doubled", "differs"):
                for key in getattr(c, name)[:show]:
                    out.append(f"    {name}: {key}")
        return out


def check_rows(ch: ClickHouse, rows: Mapping[str, Sequence[Row]], keep: int = 20) -> TopicCheck:
    """Each of ``rows`` (by table, as the worker builds them) against what ClickHouse holds."""
    out = TopicCheck()
    for table, built in rows.items():
        key_columns = ROW_KEYS.get(table)
        if key_columns is None or not built:
            continue  # positions, summaries: derived, checked by the tables they derive from
        values = _VALUES.get(table, ())
        wanted: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for row in built:
            wanted.setdefault(
                tuple(row[c] for c in key_columns), tuple(_norm(row[c]) for c in values)
            )
        check = out.tables.setdefault(table, TableCheck())
        check.rows = len(wanted)
        keys = list(wanted)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            stored = _stored(ch, table, key_columns, values, chunk)
            for key in chunk:
                label = "/".join(str(k) for k in key)
                found = stored.get(key)
                if found is None:
                    check.missing_n += 1
                    if len(check.missing) < keep:
                        check.missing.append(label)
                    continue
                check.stored += 1
                copies, got = found
                if table in _ONCE and copies > 1:
                    check.doubled_n += 1
                    if len(check.doubled) < keep:
                        check.doubled.append(f"{label} ({copies} rows)")
                if got != wanted[key]:
                    check.differs_n += 1
                    if len(check.differs) < keep:
                        check.differs.append(
                            f"{label}: stored {got}, the record says {wanted[key]}"
                        )
    return out


def _stored(
    ch: ClickHouse,
    table: str,
    key_columns: tuple[str, ...],
    values: tuple[str, ...],
    keys: Iterable[tuple[Any, ...]],
) -> dict[tuple[Any, ...], tuple[int, tuple[Any, ...]]]:
    """Key -> (rows stored under it, the values of its newest row)."""
    key_sql = f"({', '.join(key_columns)})" if len(key_columns) > 1 else key_columns[0]
    listed = ", ".join(_literal(k) if len(k) > 1 else _scalar(k[0]) for k in keys)
    picked = ", ".join(f"any({v})" for v in values)  # one row's: a key held once has one
    select = ", ".join([*key_columns, "count()", *([picked] if picked else [])])
    found = ch.query(
        f"SELECT {select} FROM {table} WHERE {key_sql} IN ({listed}) GROUP BY {key_sql}"
    )
    n = len(key_columns)
    return {tuple(r[:n]): (int(r[n]), tuple(_norm(v) for v in r[n + 1 :])) for r in found}


def _scalar(value: Any) -> str:
    return quote_string(value) if isinstance(value, str) else str(int(value))


def _literal(key: tuple[Any, ...]) -> str:
    return "(" + ", ".join(_scalar(v) for v in key) + ")"


def _norm(value: Any) -> Any:
    """Values as comparable across Python rows and ClickHouse answers."""
    if isinstance(value, Decimal):
        return value.normalize() if value else Decimal(0)
    return value


# Each rollup: (table, its key columns, how events give the period, its count column, which
# events it counts).
_ROLLUPS = (
    ("hourly_metrics", "project_id, hour, event_type, model",
     "toStartOfHour(timestamp) AS hour", "events", "1"),
    ("daily_metrics", "project_id, day, event_type, model",
     "toDate(timestamp) AS day", "events", "1"),
    ("user_usage_daily", "user_id, period_start",
     "toDate(timestamp) AS period_start", "prompt_calls",
     "event_type = 'prompt_call' AND user_id != ''"),
)  # fmt: skip


def rollup_differences(ch: ClickHouse, show: int = 20) -> list[str]:
    """Where a rollup is not the aggregation of ``events`` (count, tokens, cost), on the days
    after ``events``' retention began; empty when they agree."""
    out: list[str] = []
    since = "toDate(timestamp) >= today() - 89"
    sums = (
        "sum(tokens_input), sum(tokens_output), sum(tokens_cache_read), sum(tokens_cache_write), "
        "sum(cost_usd)"
    )
    for table, keys, derived, count, where in _ROLLUPS:
        period = keys.split(", ")[1]
        held = ch.query(
            f"SELECT {keys}, sum({count}), {sums} FROM {table} "
            f"WHERE toDate({period}) >= today() - 89 GROUP BY {keys}"
        )
        truth = ch.query(
            f"SELECT {keys}, count(), {sums} "
            f"FROM (SELECT *, {derived} FROM events FINAL WHERE {since} AND {where}) "
            f"GROUP BY {keys}"
        )
        n = len(keys.split(", "))
        held_by = {tuple(r[:n]): tuple(_norm(v) for v in r[n:]) for r in held}
        truth_by = {tuple(r[:n]): tuple(_norm(v) for v in r[n:]) for r in truth}
        wrong = sorted(
            (k for k in held_by.keys() | truth_by.keys() if held_by.get(k) != truth_by.get(k)),
            key=str,
        )
        for key in wrong[:show]:
            out.append(
                f"{table} {'/'.join(map(str, key))}: holds {held_by.get(key)}, "
                f"events say {truth_by.get(key)}"
            )
        if len(wrong) > show:
            out.append(f"{table}: {len(wrong) - show:,} more")
    return out
