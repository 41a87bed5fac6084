"""The agents' stream buffer, bounded in bytes as well as in messages.

Faust's stream buffer (``stream_buffer_maxsize``) counts messages: under pressure at 80% of them
it takes the partition out of the fetch (``Consumer.on_buffer_full``) and puts it back at 40%
(``on_buffer_drop``). A message is a bundle of up to ``envelope_bundle_max`` envelopes of up to
``envelope_max_bytes``, so what 4096 messages hold depends on the files: a 5M-line backfill's
worker, behind the watcher the whole run, held ~3,300 of them, ~270 MB. This queue also counts
the bytes of the messages it holds and is under pressure at ``max_bytes`` too, and it drops back
when both are at 40%: Faust's own flow control, with one more reason to use it.

Pressure never blocks a put (Faust's fetcher still hands over what it has fetched), so a message
larger than ``max_bytes`` passes; and an empty queue always lets every partition fetch again.
"""

from __future__ import annotations

from typing import Any

from mode.utils.queues import ThrowableQueue

__all__ = ["BytesBoundedQueue", "value_bytes"]


def value_bytes(item: Any) -> int:
    """The bytes of a buffered Faust event's message value (0 for anything else)."""
    value = getattr(getattr(item, "message", None), "value", None)
    return len(value) if isinstance(value, bytes | bytearray) else 0


class BytesBoundedQueue(ThrowableQueue[Any]):
    """Faust's stream buffer (mode's ``ThrowableQueue``), under pressure at ``max_bytes`` too."""

    def __init__(self, *args: Any, max_bytes: int, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        super().__init__(*args, **kwargs)

    # asyncio.Queue's hooks: every put and get of the queue, forced or not, goes through them.
    def _put(self, item: Any) -> None:
        self.bytes += value_bytes(item)
        super()._put(item)

    def _get(self) -> Any:
        item = super()._get()
        self.bytes -= value_bytes(item)
        return item

    def clear(self) -> None:
        super().clear()
        self.bytes = 0

    def in_pressure_high_state(self, callback: Any) -> bool:
        pending = self._pending_pressure_drop_callbacks
        if callback in pending:
            return False
        if self.qsize() >= self.pressure_high_size or self.bytes >= self.max_bytes:
            pending.add(callback)
            self.on_pressure_high()
            return True
        return False

    def maybe_endorse_pressure_drop(self) -> None:
        pending = self._pending_pressure_drop_callbacks
        if not pending:
            return
        if not self.qsize():  # nothing left to call them later: every partition fetches again
            for callback in pending:
                callback()
            pending.clear()
            self.on_pressure_drop()
        elif (
            self.qsize() <= self.pressure_drop_size
            and self.bytes <= self.max_bytes * self.pressure_drop_ratio
        ):
            pending.pop()()  # one a get, as mode's: the items left call the rest
            self.on_pressure_drop()
