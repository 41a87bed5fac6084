"""The worker's live dedup state per scope: ``ingestor.usage.dedup`` (ccusage's rule, step for
step) in stream order, answering what each line does to the session aggregates. Pure.

On a backfill the watcher sends each scope's files in path order, whole, so stream order is
ccusage's order and the live aggregates equal ccusage's. Reports recompute the rule over what
ClickHouse holds in ccusage's order (``report/entries.py``), whatever the arrival order was.

``observe`` is idempotent per line identity: a line already counted (a replay after a crash)
changes nothing.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from ingestor.usage.dedup import Outcome as Step
from ingestor.worker.packed import Contribution, LineSet, PackedRule, copy_of

__all__ = ["Contribution", "DedupIndex", "Outcome", "Verdict"]


class Outcome(Enum):
    COUNTED = "counted"  # a new entry
    REPLACED = "replaced"  # better than the copy that counted so far: that one is retracted
    DUPLICATE = "duplicate"  # a copy that loses to the entry it competes with (or a replay)


class Verdict(NamedTuple):  # not a frozen dataclass: one a usage line, ~4x the time to build
    outcome: Outcome
    add: Contribution | None = None
    retract: Contribution | None = None


_DUPLICATE = Verdict(Outcome.DUPLICATE)  # frozen: one serves every duplicate


class DedupIndex:
    """The counted entries of one dedup scope, in the order they arrived (packed: ``packed.py``)."""

    __slots__ = ("_counted", "_rule")

    def __init__(self) -> None:
        self._rule = PackedRule()
        self._counted = LineSet()  # the identities of the lines in the rule's slots

    def __len__(self) -> int:
        return len(self._rule)

    def observe(self, message_id: str, request_id: str, line: Contribution) -> Verdict:
        """Decide what ``line`` (a usage line of this scope) does to the totals."""
        counted = self._counted
        file, generation, offset = line.identity
        # Nearly every line: past the last counted of its file generation (so not counted yet),
        # of a message not seen before. Its place is found once, and no Copy nor Push is built.
        offsets = counted.run(file, generation)
        # Past the run's last offset: not counted yet, and its place in the set is the end.
        last = (not offsets or offsets[-1] < offset) and 0 <= offset < 2**64
        if last and self._rule.count_new(message_id, request_id, line):
            offsets.append(offset)
            return Verdict(Outcome.COUNTED, add=line)
        if not last and line.identity in counted:
            return _DUPLICATE
        push = self._rule.push(copy_of(message_id, request_id, line), line)
        if push.outcome is Step.DUPLICATE:
            return _DUPLICATE
        if last:
            offsets.append(offset)
        else:
            counted.add(line.identity)
        if push.replaced is None:
            return Verdict(Outcome.COUNTED, add=line)
        counted.discard(push.replaced.identity)
        return Verdict(Outcome.REPLACED, add=line, retract=push.replaced)
