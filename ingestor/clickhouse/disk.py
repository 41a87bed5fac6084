"""Room on the disk under a chdb data directory: an insert waits for it.

chdb 26.9 commits some data parts with empty files when the disk fills up under an insert or a
merge (ARCHITECTURE, "A full disk"). Reopening the session detaches them and brings back a broken
merge's rows, but an insert ClickHouse had confirmed is lost with its part. So inserts are not
started while the filesystem of the data directory has less than a reserve free: the worker's
insert waits (consumption pauses, as while ClickHouse refuses inserts) instead of failing, and
the room left is what merges in progress and a neighbour's writes run into first.

The reserve is 5% of the filesystem, at most 1 GiB (``INGESTOR_DISK_RESERVE_MB`` sets it; 0 turns
the wait off). A ClickHouse server keeps its own disks: nothing is checked for one.

The disk can still fill while a batch is written (a neighbour's writes). ``check_written`` then
reads back the parts written since the batch began before the batch is acknowledged: a part
committed with empty files fails that read, the engine reopens and detaches it, and the batch is
refused (``StorageError``) so that it is delivered and stored again, instead of acknowledged with
rows that the next read of the table would lose (the fault suite, seed 403069 on Apache Kafka:
``tool_calls`` short of an acknowledged batch).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ingestor.clickhouse.engine import ClickHouse, quote_identifier, quote_string
from ingestor.errors import StorageError
from ingestor.plain_settings import ClickHouseTarget

__all__ = [
    "Room",
    "check_written",
    "default_reserve",
    "room",
    "wait_for_room",
    "wait_for_room_under",
    "write_with_room",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_RESERVE_FRACTION = 0.05
_RESERVE_MAX = 1 << 30


@dataclass(frozen=True, slots=True)
class Room:
    free: int  # bytes an unprivileged writer may still use
    reserve: int  # bytes kept free

    @property
    def enough(self) -> bool:
        return self.free >= self.reserve


def default_reserve(total: int) -> int:
    """The reserve of a filesystem of ``total`` bytes."""
    return min(_RESERVE_MAX, int(total * _RESERVE_FRACTION))


def room(path: Path, reserve_mb: int | None = None) -> Room:
    """The room on ``path``'s filesystem, and the reserve to keep there (``reserve_mb``, else the
    default for its size)."""
    stat = os.statvfs(path)
    reserve = (
        default_reserve(stat.f_blocks * stat.f_frsize) if reserve_mb is None else reserve_mb << 20
    )
    return Room(free=stat.f_bavail * stat.f_frsize, reserve=reserve)


def wait_for_room(
    path: Path,
    reserve_mb: int | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = 0.5,
) -> float:
    """Return once ``path``'s filesystem has its reserve free; the seconds waited."""
    waited, polls = 0.0, 0
    while not (now := room(path, reserve_mb)).enough:
        if polls % 60 == 0:  # once, then every half minute
            log.warning(
                "the disk under %s has %.1f MB free, under the %.1f MB kept free: "
                "inserts wait for room (free some space)",
                path, now.free / 2**20, now.reserve / 2**20,
            )  # fmt: skip
        sleep(poll_s)
        waited, polls = waited + poll_s, polls + 1
    if waited:
        log.warning("the disk under %s has room again after %.1f s", path, waited)
    return waited


def wait_for_room_under(target: ClickHouseTarget, reserve_mb: int | None) -> float:
    """``wait_for_room`` for a chdb target's directory; a server's disks are its own (0 s)."""
    path = _checked_dir(target, reserve_mb)
    return 0.0 if path is None else wait_for_room(path, reserve_mb)


def _checked_dir(target: ClickHouseTarget, reserve_mb: int | None) -> Path | None:
    """The directory whose disk is watched: a chdb target's, unless the reserve is off."""
    if target.kind != "chdb" or target.path is None or reserve_mb == 0:
        return None
    return target.path


def write_with_room(ch: ClickHouse, reserve_mb: int | None, write: Callable[[], _T]) -> _T:
    """``write()`` (a batch's ``write_batch``) once the disk has its reserve
    (``wait_for_room_under``), then ``check_written`` before its result is returned: the
    caller acknowledges the batch only after this."""
    wait_for_room_under(ch.target, reserve_mb)
    began, lost = time.time(), ch.lost_inserts()
    out = write()
    check_written(ch, reserve_mb, since_s=began, lost_before=lost)
    return out


def check_written(
    ch: ClickHouse, reserve_mb: int | None, *, since_s: float, lost_before: int
) -> None:
    """Raise ``StorageError`` if an insert of the batch written since ``since_s`` (epoch
    seconds) may be lost: the engine detached an insert's broken part meanwhile
    (``lost_inserts`` grew past ``lost_before``), or, the disk now being under its reserve,
    reading every column of the parts written since then made it detach one."""
    path = _checked_dir(ch.target, reserve_mb)
    if path is not None and not room(path, reserve_mb).enough:
        _read_back(ch, since_s)
    if ch.lost_inserts() > lost_before:
        raise StorageError(
            "a part written under a full disk was broken and is detached: the batch is stored "
            "again once delivered again"
        )


def _read_back(ch: ClickHouse, since_s: float) -> None:
    """Read every column of each active part modified since ``since_s`` (a second earlier:
    ``modification_time`` has whole seconds)."""
    written = ch.query(
        "SELECT table, groupArray(name) FROM system.parts WHERE database = currentDatabase() "
        f"AND active AND modification_time >= toDateTime({int(since_s) - 1}) GROUP BY table"
    )
    for table, parts in written:
        names = ", ".join(quote_string(str(p)) for p in parts)
        # ``ignore`` reads its arguments and returns 0: every column's marks and data are read.
        ch.query(
            f"SELECT count() FROM {quote_identifier(str(table))} "
            f"WHERE _part IN ({names}) AND NOT ignore(*)"
        )
