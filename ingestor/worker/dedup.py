"""The worker's live dedup state per scope: ``ingestor.usage.dedup`` (ccusage's rule, step for
step) in stream order, answering what each line does to the session aggregates. Pure.

On a backfill the watcher sends each scope's files in path order, whole, so stream order is
ccusage's order and the live aggregates equal ccusage's. Reports recompute the rule over what
ClickHouse holds in ccusage's order (``report/entries.py``), whatever the arrival order was.

``observe`` is idempotent per line identity: a line already counted (a replay after a crash)
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from ingestor.usage.dedup import Copy, Deduper
from ingestor.usage.dedup import Outcome as Step

__all__ = ["Contribution", "DedupIndex", "Outcome", "Verdict"]


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one counted usage line adds to its session's aggregates."""

    identity: tuple[str, int, int]  # (source_file, generation, offset): the line itself
    session_id: str
    model: str
    timestamp_ms: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: Decimal
    tool_uses: tuple[str, ...]
    is_sidechain: bool
    has_speed: bool = False
    line_session_id: str = ""  # the line's own sessionId (the dedup key without requestId)

    @property
    def dedup_total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )


class Outcome(Enum):
    COUNTED = "counted"  # a new entry
    REPLACED = "replaced"  # better than the copy that counted so far: that one is retracted
    DUPLICATE = "duplicate"  # a copy that loses to the entry it competes with (or a replay)


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    add: Contribution | None = None
    retract: Contribution | None = None


class DedupIndex:
    """The counted entries of one dedup scope, in the order they arrived."""

    __slots__ = ("_counted", "_deduper")

    def __init__(self) -> None:
        self._deduper: Deduper[Contribution] = Deduper()
        self._counted: set[tuple[str, int, int]] = set()

    def __len__(self) -> int:
        return len(self._deduper.kept)

    def observe(self, message_id: str, request_id: str, line: Contribution) -> Verdict:
        """Decide what ``line`` (a usage line of this scope) does to the totals."""
        if line.identity in self._counted:
            return Verdict(Outcome.DUPLICATE)
        copy = Copy(
            message_id=message_id or None,
            request_id=request_id or None,
            is_sidechain=line.is_sidechain,
            total=line.dedup_total,
            has_speed=line.has_speed,
            timestamp_ms=line.timestamp_ms,
            session_id=line.line_session_id or None,
        )
        push = self._deduper.push(copy, line)
        if push.outcome is Step.DUPLICATE:
            return Verdict(Outcome.DUPLICATE)
        self._counted.add(line.identity)
        if push.replaced is None:
            return Verdict(Outcome.COUNTED, add=line)
        self._counted.discard(push.replaced.identity)
        return Verdict(Outcome.REPLACED, add=line, retract=push.replaced)
