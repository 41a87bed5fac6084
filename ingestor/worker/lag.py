"""How far this worker is behind its input partitions (for ``/stats/`` and ``/metrics``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

__all__ = ["behind", "furthest", "handled_offsets", "has_backlog", "partition_lag"]


def partition_lag(
    app: Any,
    last_offsets: Mapping[tuple[str, int], int],
    ends: Mapping[tuple[str, int], int] | None = None,
) -> dict[tuple[str, int], int]:
    """Records below each input partition's high-watermark that this process neither handled
    nor found committed; empty while unassigned.

    Counted from the last fetch's high-watermark, or the end offset the broker gave the
    watchdog (``ends``) when that is further: a partition Faust stopped fetching keeps its last
    fetch's high-watermark, and counted from that alone it looked caught up with records unread.
    """
    consumer = app.consumer
    lag: dict[tuple[str, int], int] = {}
    for tp, done in handled_offsets(app, last_offsets).items():
        key = (tp.topic, tp.partition)
        highwater = furthest(consumer.highwater(tp), (ends or {}).get(key))
        if highwater is None:
            continue
        lag[key] = max(0, highwater - 1 - done)
    return lag


def furthest(fetched: int | None, listed: int | None) -> int | None:
    """The further of a fetch's high-watermark and a listed end offset, either unknown."""
    if fetched is None:
        return listed
    return fetched if listed is None else max(fetched, listed)


def handled_offsets(app: Any, last_offsets: Mapping[tuple[str, int], int]) -> dict[Any, int]:
    """Per assigned input partition (Faust's TP): the last offset this process handled, or the
    last one before the committed offset (-1: none); empty while unassigned.

    A committed offset is the next record's, Kafka's meaning, whether read from the broker or
    committed by Faust (faust-streaming commits the last acked + 1; ``guard.missing`` reads it
    so too). Taken for the last record handled, it hid the one record after it: a worker
    restarted with one message left counted 0 behind, and ``up --once`` ended without it.
    """
    consumer = app.consumer
    try:
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001 - not started yet
        return {}
    changelogs = app.conf.id + "-"  # Faust names them "{app id}-{table}-changelog"
    return {
        tp: max(
            last_offsets.get((tp.topic, tp.partition), -1),
            (consumer._committed_offset.get(tp) or 0) - 1,
        )
        for tp in assigned
        if not tp.topic.startswith(changelogs)
    }


def behind(
    app: Any,
    last_offsets: Mapping[tuple[str, int], int],
    ends: Mapping[tuple[str, int], int] | None = None,
) -> int | None:
    """The sum of ``partition_lag``; None while no partition is assigned, or while an input
    partition was never fetched: its high-watermark is unknown, and counting it as 0 let a
    caller (``up --once``) think everything was stored before that partition was read."""
    handled = handled_offsets(app, last_offsets)
    if not handled:
        return None
    lag = partition_lag(app, last_offsets, ends)
    if len(lag) < len(handled):
        return None
    return sum(lag.values())


def has_backlog(app: Any, message: Any, backlog: int) -> bool:
    """Whether ``message`` has ``backlog`` or more records after it in its partition (as the
    last fetch saw its end)."""
    try:
        highwater = cast(Any, app.consumer).highwater(message.tp)
    except Exception:  # noqa: BLE001 - not known: batch as when caught up
        return False
    return isinstance(highwater, int) and highwater - 1 - message.offset >= backlog
