"""What ccusage's ``daily`` report counts: its own loader's variants of our rules, from the files.

``adapter/claude/daily.rs`` accepts lines the other reports skip (agent-progress lines, a
non-bool ``isApiErrorMessage``) and deduplicates with a variant of the rule
(``Deduper(daily=True)``). The product keeps one rule for every report; the parity test uses
this to show that our daily report differs from ccusage's by exactly those variants.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ingestor.rows.records import usage_costs
from ingestor.usage.accept import read_usage_line
from ingestor.usage.dedup import Copy, Deduper
from ingestor.usage.entry import Entry
from ingestor.usage.paths import project_of, session_parts
from ingestor.usage.prices import SYNTHETIC_MODEL
from ingestor.usage.verdict import UsageLine


def ccusage_daily_entries(root: Path) -> list[Entry]:
    deduper: Deduper[Entry] = Deduper(daily=True)
    for path in sorted((root / "projects").rglob("*.jsonl"), key=str):
        for raw in path.read_bytes().split(b"\n"):
            usage = read_usage_line(raw, daily=True)
            if isinstance(usage, UsageLine):
                entry = _entry(usage, str(path))
                copy = Copy(
                    message_id=usage.message_id,
                    request_id=usage.request_id,
                    is_sidechain=usage.is_sidechain is True,
                    total=entry.total_tokens,
                    has_speed=usage.speed is not None,
                    timestamp_ms=entry.timestamp_ms,
                    session_id=usage.session_id,
                    cost=entry.cost,
                )
                deduper.push(copy, entry)
    return deduper.kept


def _entry(u: UsageLine, path: str) -> Entry:
    split = u.ephemeral_5m is not None and u.ephemeral_1h is not None
    write_5m = (
        u.ephemeral_5m if split and u.ephemeral_5m is not None else u.cache_creation_input_tokens
    )
    write_1h = u.ephemeral_1h if split and u.ephemeral_1h is not None else 0
    tokens = (
        u.input_tokens,
        u.output_tokens,
        write_5m + write_1h,
        u.cache_read_input_tokens,
        write_5m,
        write_1h,
    )
    model = u.model or ""
    cost_usd = None if u.cost_usd is None else Decimal(repr(u.cost_usd))
    cost = usage_costs(model, tokens, u.speed or "", cost_usd)[0]
    session_id, project_path = session_parts(path)
    fast = u.speed == "fast"
    return Entry(
        timestamp_ms=u.timestamp_ms,
        project=project_of(path),
        session_id=session_id,
        project_path=project_path,
        model=None if model in ("", SYNTHETIC_MODEL) else (model + "-fast" if fast else model),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_creation_tokens=tokens[2],
        cache_read_tokens=tokens[3],
        cost=cost,
    )
