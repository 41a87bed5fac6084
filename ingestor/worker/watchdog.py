"""The watchdog: input partitions whose records stopped reaching the agent, and what to do.

The decisions are ``guard.py``'s (pure); this module asks the consumer and the broker what
they need and acts: seek, put a partition back into Faust's fetch, or restart in place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, NoReturn, cast

from ingestor.worker.guard import SEEK_S, remedy, stalled
from ingestor.worker.lag import furthest
from ingestor.worker.state import WorkerState

__all__ = ["watch_round"]

log = logging.getLogger(__name__)


async def watch_round(
    app: Any,
    state: WorkerState,
    inputs: Collection[str],
    *,
    restart: Callable[[], Awaitable[NoReturn]],
) -> None:
    """One look at every assigned input partition (every SEEK_S / 3).

    The other face of the Faust hole (see ``app.handle``): when the skipped records are the last
    ones, no later record reveals it. A partition whose high-watermark is ahead of what
    the agent handled, with nothing arriving, is stuck (guard.remedy: fetch its records
    again in place, or restart in place; the hole is not committed until a later record
    is acked, so a restart re-reads it).
    """
    idle = time.monotonic() - state.last_progress
    if idle < SEEK_S or state.inflight_messages:
        return
    consumer = cast(Any, app.consumer)
    assigned = [tp for tp in consumer.assignment() if tp.topic in inputs]
    # The fetch's high-watermark is missing for a partition never fetched (seen: a failover
    # survivor) and stale for one Faust stopped fetching: ask the broker too.
    listed = await _end_offsets(consumer, assigned)
    resumed = False
    for tp in assigned:
        if (end := listed.get(tp)) is not None:
            state.ends[(tp.topic, tp.partition)] = end
        highwater = furthest(consumer.highwater(tp), end)
        if highwater is None:
            continue
        last = state.last_offsets.get((tp.topic, tp.partition))
        # Faust keeps the committed offset as Kafka's, from its seek on assignment or its
        # own commits (see guard.stalled).
        committed = consumer._committed_offset.get(tp)
        if not stalled(highwater, last, committed):
            continue
        position = await _position(consumer, tp)
        fetching = _fetching(consumer, tp)
        action = remedy(
            last, committed, position,
            idle_s=idle, handling=state.handling > 0, seeks=state.seeks, fetching=fetching,
        )  # fmt: skip
        if action is None:
            continue
        if action[0] == "resume":
            log.warning(
                "%s[%s]: records up to %s unread and Faust no longer fetches it; fetching it"
                " again",
                tp.topic, tp.partition, highwater - 1,
            )  # fmt: skip
            resumed = True
            _fetch_again(consumer, tp)
            continue
        if action[0] == "seek":
            log.warning(
                "%s[%s]: offsets %s..%s were fetched and never reached the agent;"
                " fetching them again",
                tp.topic, tp.partition, action[1], position - 1 if position else None,
            )  # fmt: skip
            state.seeks += 1
            state.last_progress = time.monotonic()
            await consumer.seek(tp, action[1])
            return
        log.critical(
            "%s[%s] stalled at %s below its high-watermark %s (fetch position %s); restarting",
            tp.topic,
            tp.partition,
            "its committed offset" if last is None else last,
            highwater,
            position,
        )
        for line in _awaiting():
            log.warning("stalled: %s", line)
        await restart()
    if resumed:  # every partition out of the fetch is back in: give them SEEK_S
        state.seeks += 1
        state.last_progress = time.monotonic()


async def _position(consumer: Any, tp: Any) -> int | None:
    """aiokafka's fetch position on ``tp``; None if it has none (or cannot say)."""
    try:
        position = await consumer.position(tp)
    except Exception:  # noqa: BLE001 - then the watchdog restarts, as without it
        log.warning("no fetch position for %s", tp, exc_info=True)
        return None
    return position if isinstance(position, int) else None


async def _end_offsets(consumer: Any, tps: list[Any]) -> dict[Any, int]:
    """The broker's end offsets of ``tps`` (one ListOffsets); those it cannot say are left out.
    On Tansu one can be low after multi-record batches, never above the truth: a stall it shows
    is real."""
    if not tps:
        return {}
    try:
        ends = await consumer.highwaters(*tps)
    except Exception:  # noqa: BLE001 - then the next round asks again
        log.warning("no end offsets for %s", tps, exc_info=True)
        return {}
    return {tp: end for tp, end in ends.items() if isinstance(end, int)}


def _fetching(consumer: Any, tp: Any) -> bool:
    """Whether Faust's fetcher asks for ``tp`` (faust-streaming 0.15's private sets: it takes a
    partition out while its stream buffer is full, ``on_buffer_full``, and puts it back when the
    buffer drains, ``on_buffer_drop``; a partition we paused ourselves counts as fetching)."""
    try:
        active = consumer._get_active_partitions()
        return tp in active or tp in consumer._paused_partitions
    except Exception:  # noqa: BLE001 - another Faust: assume it fetches (then restart helps)
        return True


def _fetch_again(consumer: Any, tp: Any) -> None:
    """Put ``tp`` back into Faust's fetch, as its buffer's drain would have."""
    if tp in consumer._buffered_partitions:
        consumer.on_buffer_drop(tp)
    else:
        consumer._get_active_partitions().add(tp)


def _awaiting() -> list[str]:
    """Where each task of this loop waits (its innermost awaited frames): what a stall is on."""
    out = []
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        chain: list[str] = []
        while coro is not None and len(chain) < 12:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        out.append(f"{task.get_name()}: {' > '.join(chain[-6:])}")
    return out
