"""Entries built by hand for the report tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ingestor.usage.entry import Entry

SONNET, OPUS, HAIKU = "claude-sonnet-4-20250514", "claude-opus-4-20250514", "claude-haiku-4-5"


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def e(
    iso: str,
    model: str | None = SONNET,
    tokens: tuple[int, int, int, int] = (10, 1, 0, 0),
    cost: str = "1",
    project: str = "p",
    session: str = "s",
) -> Entry:
    return Entry(
        timestamp_ms=ms(iso),
        project=project,
        session_id=session,
        project_path=project,
        model=model,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_creation_tokens=tokens[2],
        cache_read_tokens=tokens[3],
        cost=Decimal(cost),
    )
