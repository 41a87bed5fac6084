"""ClickHouse rows from records: pure functions, one dict per row, keys = column names.

``transcript_values`` runs once per transcript line, so it builds a tuple of the values in
``TRANSCRIPT_COLUMNS``' order (``rows/columns.py``) and caches what repeats per file (first
timestamp, file stem); ``transcript_row`` is the same as a dict. Values are the types both
engines accept: ``int``, ``str``, ``Decimal``, aware UTC ``datetime``, ``list``, ``dict``,
``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any, Protocol

from ingestor.errors import Location
from ingestor.models import (
    AgentStep,
    ErrorEvent,
    Event,
    EventBase,
    LedgerEntry,
    PromptCall,
    ToolCall,
    TranscriptLine,
)
from ingestor.usage.paths import session_parts
from ingestor.usage.prices import PriceTable, line_cost, price_table
from ingestor.wire import Kind, TranscriptSource

__all__ = [
    "EPOCH",
    "TRANSCRIPT_COLUMNS",
    "DeadLetterRecord",
    "RAW_MAX_CHARS",
    "UNKNOWN_FIRST_TS",
    "dead_letter_row",
    "event_rows",
    "file_first_ts",
    "ledger_row",
    "money",
    "session_of",
    "transcript_row",
    "transcript_values",
    "usage_costs",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a line without a timestamp
UNKNOWN_FIRST_TS = datetime(2299, 12, 31, tzinfo=UTC)  # sorts files of unknown age last
RAW_MAX_CHARS = 65_536  # a dead letter's structure (never text: ingestor.redact), at most
_MONEY_QUANTUM = Decimal("1E-10")  # the scale of every Decimal(20, 10) money column
# Type-specific event fields stored in columns of their own, not in ``attributes``.
_EVENT_COLUMNS = frozenset(
    {"event_type", "prompt_chars", "response_chars", "finish_reason", "error_type", "error_message"}
)


def money(value: Decimal) -> Decimal:
    """``value`` rounded (half-even) to the 10 places a Decimal(20, 10) column keeps.

    ClickHouse would truncate extra places silently; rounding here is explicit.
    """
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -10:
        return value.quantize(_MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)
    return value


@lru_cache(maxsize=4096)
def session_of(path: str) -> str:
    """ccusage's session of a transcript file: its stem."""
    # Once per file, not per line: every line of an envelope has the same file.
    return session_parts(path)[0]


@lru_cache(maxsize=4096)
def file_first_ts(text: str | None) -> datetime:
    """A file's ``first_ts`` as the aware datetime stored (unknown: sorts last)."""
    if not text:
        return UNKNOWN_FIRST_TS
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return UNKNOWN_FIRST_TS
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def transcript_row(
    line: TranscriptLine, source: TranscriptSource, offset: int, length: int
) -> dict[str, Any]:
    """The ``transcript_lines`` row of ``line``, at ``offset`` (``length`` bytes) in ``source``.

    ``session_id`` is ccusage's (the file, ``usage.paths``); ``cost_usd`` is the line's
    ``costUSD`` when it has one, else calculated (``usage_costs``).
    """
    return dict(
        zip(TRANSCRIPT_COLUMNS, transcript_values(line, source, offset, length), strict=True)
    )


def transcript_values(
    line: TranscriptLine, source: TranscriptSource, offset: int, length: int
) -> tuple[Any, ...]:
    """``transcript_row``'s values, in ``TRANSCRIPT_COLUMNS``' order."""
    message = line.message
    usage = None if message is None else message.usage
    model = (message.model if message is not None else None) or ""
    if usage is None:
        tokens = (0, 0, 0, 0, 0, 0)
        tier = speed = ""
    else:
        write_5m, write_1h = usage.cache_split()
        tokens = (
            usage.input_tokens,
            usage.output_tokens,
            write_5m + write_1h,
            usage.cache_read_input_tokens,
            write_5m,
            write_1h,
        )
        tier = usage.service_tier or ""
        speed = usage.speed or ""
    costs = usage_costs(model, tokens, speed, line.cost_usd) if usage is not None else NO_COSTS
    return assemble_transcript_values(
        source,
        offset,
        length,
        line.session_id,
        line.type,
        line.uuid,
        line.parent_uuid,
        line.request_id,
        message.id if message is not None else None,
        line.timestamp,
        line.is_sidechain,
        line.is_api_error_message,
        model,
        usage is not None,
        tokens,
        tier,
        speed,
        costs,
        message.tool_uses if message is not None else (),
        line.cwd,
        line.version,
    )


# (cost in auto mode, has costUSD, calculated cost, no price for a model with tokens)
Costs = tuple[Decimal, int, Decimal, int]
NO_COSTS: Costs = (Decimal(0), 0, Decimal(0), 0)


def usage_costs(
    model: str, tokens: tuple[int, int, int, int, int, int], speed: str, cost_usd: Decimal | None
) -> Costs:
    """A usage line's costs for every ``--mode`` (``ingestor.usage.prices``): the line's
    ``costUSD`` when it has one, the cost calculated from its tokens, and whether the model had
    no price although tokens were used (ccusage's ``missing_pricing_model_for_token_total``)."""
    table = price_table()
    calculated = line_cost(
        table,
        model,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_write_5m=tokens[4],
        cache_write_1h=tokens[5],
        cache_read=tokens[3],
        fast=speed == "fast",
    )
    missing = int(calculated is None and bool(model) and sum(tokens[:4]) > 0)
    if calculated is None:
        calc = Decimal(0)
    elif _fine_prices(table, model, speed == "fast"):
        calc = calculated  # money() would return it as it is
    else:
        calc = money(calculated)
    if cost_usd is None:
        return calc, 0, calc, missing
    return money(cost_usd), 1, calc, missing


@lru_cache(maxsize=4096)
def _fine_prices(table: PriceTable, model: str, fast: bool) -> bool:
    """Whether ``money`` returns every cost ``line_cost`` calculates for ``model`` as it is (at
    most 10 places). Products and sums of Decimals are exact here, so a cost's exponent is at
    least its rates' smallest (0 for a kind without tokens), plus the fast multiplier's, less
    the 6 of the division by a million, which is exact."""
    price = table.find(model)
    if price is None:
        return False
    rates = (price.input, price.output, price.cache_write_5m, price.cache_write_1h)
    exponents = [
        value.as_tuple().exponent
        for rate in (*rates, price.cache_read)
        for value in (rate.base, rate.above)
        if value is not None
    ]
    fast_exponent = price.fast_multiplier.as_tuple().exponent if fast else 0
    if not all(isinstance(e, int) for e in [*exponents, fast_exponent]):
        return False  # a NaN or infinite rate: let money() decide
    bound = min([0, *exponents]) + min(fast_exponent, 0) - 6  # type: ignore[operator]
    return bound >= -10


# ``transcript_lines``' columns, in the order ``assemble_transcript_values`` gives their values.
TRANSCRIPT_COLUMNS = (
    *("source_file", "source_generation", "source_offset", "source_length", "file_first_ts"),
    *("project", "dedup_scope", "session_id", "line_session_id", "line_type", "uuid"),
    *("parent_uuid", "request_id", "message_id", "timestamp", "is_sidechain", "is_api_error"),
    *("model", "has_usage", "input_tokens", "output_tokens", "cache_creation_tokens"),
    *("cache_read_tokens", "cache_creation_5m", "cache_creation_1h", "service_tier", "speed"),
    *("cost_usd", "has_cost_usd", "cost_calculated", "price_missing", "usage_limit_reset_ms"),
    *("tool_uses", "cwd", "version"),
)


def assemble_transcript_values(
    source: TranscriptSource,
    offset: int,
    length: int,
    line_session_id: str | None,
    line_type: str,
    uuid: str | None,
    parent_uuid: str | None,
    request_id: str | None,
    message_id: str | None,
    timestamp: datetime | None,
    is_sidechain: bool,
    is_api_error: bool,
    model: str,
    has_usage: bool,
    tokens: tuple[int, int, int, int, int, int],
    tier: str,
    speed: str,
    costs: Costs,
    tool_uses: Iterable[str],
    cwd: str | None,
    version: str | None,
) -> tuple[Any, ...]:
    """The one place that gives ``transcript_lines``' values (``TRANSCRIPT_COLUMNS``' order),
    for both row builders.

    ``tokens`` is (input, output, cache creation, cache read, 5m writes, 1h writes). Positional
    on purpose: it runs once per line, and so a tuple, not a dict (a third of the time).

    Every value is atomic or a tuple of strings, never a list: Python's collector then stops
    tracking the row, so the rows a worker holds cost its full collections nothing. With a list
    per row they were most of the objects those collections walk (measured: 0.37 s a full
    collection over 100k rows, 0.02 s with tuples).
    """
    return (
        source.file,
        source.generation,
        offset,
        length,
        file_first_ts(source.first_ts),
        source.project,
        source.scope,
        session_of(source.file),  # ccusage's session: the file
        line_session_id or "",
        line_type,
        uuid or "",
        parent_uuid or "",
        request_id or "",
        message_id or "",
        timestamp or EPOCH,
        int(is_sidechain),
        int(is_api_error),
        model,
        int(has_usage),
        tokens[0],
        tokens[1],
        tokens[2],
        tokens[3],
        tokens[4],
        tokens[5],
        tier,
        speed,
        costs[0],
        costs[1],
        costs[2],
        costs[3],
        0,  # usage_limit_reset_ms: set from the wire record (worker/process.py)
        tuple(tool_uses),
        cwd or "",
        version or "",
    )


def event_rows(event: Event) -> dict[str, list[dict[str, Any]]]:
    """Rows of one event by table: always ``events``; plus ``tool_calls`` or ``agent_steps``."""
    # The columns events, tool_calls and agent_steps share.
    common = {
        "event_id": event.event_id,
        "project_id": event.project_id,
        "timestamp": event.timestamp,
        "session_id": event.session_id or "",
        "run_id": event.run_id or "",
        "model": event.model or "",
        "status": event.status,
        "latency_ms": event.latency_ms,
        "cost_usd": money(event.cost_usd),
    }
    prompt = event if isinstance(event, PromptCall) else None
    row = {
        **common,
        "event_type": event.event_type,
        "user_id": event.user_id or "",
        "env": event.env,
        "tags": list(event.tags),
        "tokens_input": event.tokens_input,
        "tokens_output": event.tokens_output,
        "tokens_cache_read": event.tokens_cache_read,
        "tokens_cache_write": event.tokens_cache_write,
        # Not sent: the reports price the tokens at query time (schema/0012_event_costs.sql).
        "cost_provided": int("cost_usd" in event.model_fields_set),
        "prompt_chars": prompt.prompt_chars if prompt else None,
        "response_chars": prompt.response_chars if prompt else None,
        "finish_reason": (prompt.finish_reason or "") if prompt else "",
        "error_type": event.error_type if isinstance(event, ErrorEvent) else "",
        "error_message": _error_message(event),
        "attributes": _attributes(event),
    }
    out: dict[str, list[dict[str, Any]]] = {"events": [row]}
    if isinstance(event, ToolCall):
        out["tool_calls"] = [
            {
                **common,
                "user_id": event.user_id or "",
                "tool_name": event.tool_name,
                "tool_call_id": event.tool_call_id or "",
                "error_message": event.error_message or "",
            }
        ]
    elif isinstance(event, AgentStep):
        out["agent_steps"] = [
            {
                **common,
                "step_number": event.step_number,
                "step_name": event.step_name,
                "step_type": event.step_type,
                "agent_name": event.agent_name or "",
                "tokens_input": event.tokens_input,
                "tokens_output": event.tokens_output,
            }
        ]
    return out


def _error_message(event: Event) -> str:
    if isinstance(event, ErrorEvent):
        return event.error_message
    if isinstance(event, ToolCall):
        return event.error_message or ""
    return ""


def _attributes(event: Event) -> dict[str, str]:
    """The type-specific fields without a column of their own, as text (Decimals exact)."""
    names = type(event).model_fields.keys() - EventBase.model_fields.keys() - _EVENT_COLUMNS
    return {name: _text(getattr(event, name)) for name in sorted(names)}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def ledger_row(entry: LedgerEntry) -> dict[str, Any]:
    """The ``token_usage_ledger`` row of ``entry`` (money already at the column's scale)."""
    return {
        "request_id": entry.request_id,
        "user_id": entry.user_id,
        "provider_id": entry.provider_id,
        "model_id": entry.model_id,
        "created_at": entry.created_at,
        "vendor_cost": entry.vendor_cost,
        "credits_deducted": entry.credits_deducted,
        "margin_multiplier": entry.margin_multiplier,
        "gross_margin_usd": entry.gross_margin_usd,
        "status": entry.status,
        "input_tokens": entry.input_tokens,
        "output_tokens": entry.output_tokens,
    }


class DeadLetterRecord(Protocol):
    """What a dead letter carries (``ingestor.worker.dlq.DeadLetter`` is one)."""

    @property
    def kind(self) -> Kind: ...
    @property
    def reason(self) -> str: ...
    @property
    def field(self) -> str | None: ...
    @property
    def location(self) -> Location: ...
    @property
    def raw(self) -> str: ...
    @property
    def source_generation(self) -> int: ...
    @property
    def source_length(self) -> int: ...
    @property
    def raw_sha256(self) -> str: ...
    @property
    def raw_length(self) -> int: ...


def dead_letter_row(dead: DeadLetterRecord, *, dead_at: datetime | None = None) -> dict[str, Any]:
    """The ``dead_letters`` row of ``dead``; ``dead_at`` defaults to now.

    A dead letter located in a source file is identified by its file position alone: its Kafka
    coordinates are left zero, because a line re-sent after a broker restart gets new ones and
    must replace, not duplicate, its earlier dead letter.
    """
    where = dead.location
    in_file = bool(where.file)
    return {
        "kind": dead.kind,
        "topic": "" if in_file else (where.topic or ""),
        "partition": 0 if in_file else (where.partition or 0),
        "offset": 0 if in_file else (where.offset or 0),
        "idx": 0 if in_file else (where.index or 0),
        "source_file": where.file or "",
        "source_generation": dead.source_generation if in_file else 0,
        "source_offset": (where.file_offset or 0) if in_file else 0,
        "source_length": dead.source_length if in_file else 0,
        "reason": dead.reason,
        "field": dead.field or "",
        "raw": dead.raw[:RAW_MAX_CHARS],
        "raw_sha256": dead.raw_sha256,
        "raw_length": dead.raw_length,
        "dead_at": dead_at if dead_at is not None else datetime.now(UTC),
    }
