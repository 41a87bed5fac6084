"""ccusage's dedup rule applied in stream order, one index per dedup scope (project). Pure.

The rule (ARCHITECTURE.md): lines without ``message.id`` always count; copies share the key
``(message.id, requestId)``; a sidechain line reusing a known ``message.id`` with a new
``requestId`` is a replay and is dropped; among copies the non-sidechain one wins, then the larger
input + output, else the first seen.

``observe`` is idempotent per line identity: feeding a line that is already the winner, or that
already lost, changes nothing — so a replay after a crash cannot double count.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

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

    @property
    def dedup_total(self) -> int:
        return self.input_tokens + self.output_tokens


class Outcome(Enum):
    COUNTED = "counted"  # first copy of its key, or never deduplicated
    REPLACED = "replaced"  # better than the copy that counted so far: that one is retracted
    DUPLICATE = "duplicate"  # a copy that loses to the current winner (or the winner again)
    REPLAY = "replay"  # sidechain reuse of a known message.id with a new requestId


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    add: Contribution | None = None
    retract: Contribution | None = None


def _better(new: Contribution, old: Contribution) -> bool:
    if new.is_sidechain != old.is_sidechain:
        return not new.is_sidechain
    return new.dedup_total > old.dedup_total


class DedupIndex:
    """Winners and known request ids of one dedup scope."""

    __slots__ = ("_requests", "_winners")

    def __init__(self) -> None:
        # message.id -> request ids seen with it (a str for the common single case saves memory)
        self._requests: dict[str, str | frozenset[str]] = {}
        self._winners: dict[tuple[str, str], Contribution] = {}

    def __len__(self) -> int:
        return len(self._winners)

    def observe(self, message_id: str, request_id: str, line: Contribution) -> Verdict:
        """Decide what ``line`` (a usage line of this scope) does to the totals."""
        if not message_id:
            return Verdict(Outcome.COUNTED, add=line)
        seen = self._requests.get(message_id)
        if seen is None:
            known_elsewhere = False
        elif isinstance(seen, str):
            known_elsewhere = seen != request_id
        else:
            known_elsewhere = bool(seen - {request_id})
        self._add_request(message_id, request_id)
        key = (message_id, request_id)
        if known_elsewhere and line.is_sidechain:
            winner = self._winners.get(key)
            if winner is not None and winner.identity == line.identity:
                # This very line counted before another request made it look like a replay
                # (only possible when replaying input): it stays as it was.
                return Verdict(Outcome.DUPLICATE)
            return Verdict(Outcome.REPLAY)
        current = self._winners.get(key)
        if current is None:
            self._winners[key] = line
            return Verdict(Outcome.COUNTED, add=line)
        if current.identity == line.identity or not _better(line, current):
            return Verdict(Outcome.DUPLICATE)
        self._winners[key] = line
        return Verdict(Outcome.REPLACED, add=line, retract=current)

    def _add_request(self, message_id: str, request_id: str) -> None:
        seen = self._requests.get(message_id)
        if seen is None:
            self._requests[message_id] = request_id
        elif isinstance(seen, str):
            if seen != request_id:
                self._requests[message_id] = frozenset((seen, request_id))
        elif request_id not in seen:
            self._requests[message_id] = seen | {request_id}

    def load(
        self, message_id: str, request_ids: list[str], winners: dict[str, Contribution]
    ) -> None:
        """Restore one message's state from ClickHouse (the truth) without producing verdicts.

        ``request_ids`` are all request ids seen with the message; ``winners`` maps a request id
        to the copy that counts for it.
        """
        for request_id in request_ids:
            self._add_request(message_id, request_id)
        for request_id, winner in winners.items():
            self._winners[(message_id, request_id)] = winner
