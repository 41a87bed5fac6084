"""How far this worker is behind its input partitions (for ``/stats/`` and ``/metrics``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["SEEK_S", "STALL_S", "behind", "missing", "partition_lag", "remedy", "stalled"]

STALL_S = 30.0  # no record for this long while a partition has unread records: stuck
SEEK_S = 10.0  # ... and its records were fetched: fetch them again (at most SEEKS_MAX times)
SEEKS_MAX = 3


def partition_lag(
    app: Any, last_offsets: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Records below each input partition's high-watermark that this process neither handled
    nor found committed; empty while unassigned.

    Counted from the last fetch's high-watermark. The committed offset may be either the next
    record's (Kafka's) or the last acked (Faust's): the comparison allows both, so a fully
    consumed partition counts 0 either way.
    """
    consumer = app.consumer
    lag: dict[tuple[str, int], int] = {}
    for tp, done in handled_offsets(app, last_offsets).items():
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        lag[(tp.topic, tp.partition)] = max(0, highwater - 1 - done)
    return lag


def handled_offsets(app: Any, last_offsets: Mapping[tuple[str, int], int]) -> dict[Any, int]:
    """Per assigned input partition (Faust's TP): the last offset this process handled or found
    committed (-1: none); empty while unassigned."""
    consumer = app.consumer
    try:
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001 - not started yet
        return {}
    changelogs = app.conf.id + "-"  # Faust names them "{app id}-{table}-changelog"
    return {
        tp: max(
            last_offsets.get((tp.topic, tp.partition), -1),
            consumer._committed_offset.get(tp) or -1,
        )
        for tp in assigned
        if not tp.topic.startswith(changelogs)
    }


def behind(app: Any, last_offsets: Mapping[tuple[str, int], int]) -> int | None:
    """The sum of ``partition_lag``; None while no partition is assigned."""
    try:
        if not app.consumer.assignment():
            return None
    except Exception:  # noqa: BLE001 - not started yet
        return None
    return sum(partition_lag(app, last_offsets).values())


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


def remedy(
    last: int | None,
    committed: int | None,
    position: int | None,
    *,
    idle_s: float,
    handling: bool,
    seeks: int,
) -> tuple[Literal["seek"], int] | tuple[Literal["restart"], None] | None:
    """What the watchdog does for a stalled partition (``stalled``), nothing arriving for
    ``idle_s``: seek back to the first record the agent lacks when the fetch ``position`` is
    past it (the records were fetched, and Faust dropped them), unless a record is being
    handled (those behind it are queued, not lost) or ``seeks`` in a row did not help; else
    restart in place after STALL_S."""
    expected = last + 1 if last is not None else committed
    fetched = expected is not None and position is not None and position > expected
    if fetched and expected is not None and idle_s >= SEEK_S and not handling and seeks < SEEKS_MAX:
        return "seek", expected
    if idle_s >= STALL_S:
        return "restart", None
    return None
