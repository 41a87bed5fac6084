"""The offset guard: records of an input partition that never reached the agent.

faust-streaming 0.15 drops records it fetched (ARCHITECTURE.md, "Faust skipping records"). Our
input topics are neither compacted nor transactional, so offsets must reach the agent one after
the other: ``missing`` names a hole a record reveals, ``stalled`` a partition whose records stop
arriving, ``remedy`` what the watchdog does about it. Pure decisions; ``worker/watchdog.py`` and
``worker/app.py`` act.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["SEEKS_MAX", "SEEK_S", "STALL_S", "Remedy", "missing", "remedy", "stalled"]

STALL_S = 30.0  # no record for this long while a partition has unread records: stuck
SEEK_S = 10.0  # ... and its records were fetched: fetch them again (at most SEEKS_MAX times)
SEEKS_MAX = 3


def stalled(highwater: int, last: int | None, committed: int | None) -> bool:
    """Whether a partition holds records the agent has not had, given nothing arrived lately.

    ``last``: the offset this process handled last since the partition was assigned (None:
    nothing yet); ``committed``: the group's committed offset as Kafka keeps it (the next record
    to read; Faust reads 0 as None). With a record handled, anything past it is missing; with
    none, anything at or past the committed offset (a partition taken over on failover whose
    records never reached the agent; seen on Tansu and on Apache Kafka).
    """
    if last is not None:
        return highwater > last + 1
    return highwater > (committed or 0)


def missing(offset: int, last: int | None, committed: int | None) -> tuple[int, int] | None:
    """The offsets before ``offset`` that never reached the agent (first, last), if any.

    ``last`` and ``committed`` as for ``stalled``. After a record handled, the next must follow
    it; the first record after an assignment must be the committed one: Faust also drops the
    records fetched behind the first one when it starts on a partition with a committed offset
    (seen on Apache Kafka after a restart in place, offsets 44..62 lost), and without a record
    handled before them nothing else reveals it. With no committed offset nothing can be said
    (the partition may start past 0); the watchdog covers that case.
    """
    expected = last + 1 if last is not None else committed
    if expected is None or offset <= expected:
        return None
    return expected, offset - 1


Remedy = (
    tuple[Literal["seek"], int] | tuple[Literal["resume"], None] | tuple[Literal["restart"], None]
)


def remedy(
    last: int | None,
    committed: int | None,
    position: int | None,
    *,
    idle_s: float,
    handling: bool,
    seeks: int,
    fetching: bool = True,
) -> Remedy | None:
    """What the watchdog does for a stalled partition (``stalled``), nothing arriving for
    ``idle_s``: seek back to the first record the agent lacks when the fetch ``position`` is
    past it (the records were fetched, and Faust dropped them); fetch the partition again when
    Faust stopped ``fetching`` it (it does while the stream's buffer is full, and misses the
    moment the buffer drained); either unless a record is being handled (those behind it are
    queued, not lost) or ``seeks`` in a row did not help; else restart in place after
    STALL_S."""
    expected = last + 1 if last is not None else committed
    fetched = expected is not None and position is not None and position > expected
    nudge = idle_s >= SEEK_S and not handling and seeks < SEEKS_MAX
    if fetched and expected is not None and nudge:
        return "seek", expected
    if not fetched and not fetching and nudge:
        return "resume", None
    if idle_s >= STALL_S:
        return "restart", None
    return None
