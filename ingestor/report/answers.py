"""Report answers kept while the stored data stays the same: the worker answers a report it
has built before without building it again.

A MergeTree table's data parts never change: an insert, a merge or a mutation writes new parts
under new names (from block numbers a table never hands out twice while it is open) and retires
old ones. So the names and write times of a database's active parts, with each table's identity
and definition, say what every table holds: while they are the same, a report built from them
is the same too, and one read of ``system.parts`` (milliseconds) tells, against up to a second
for a large report's build. Every table the reports read is a MergeTree (``schema/``); views
are read through to theirs.

Kept only for reports that read nothing but stored data (not ``--last`` or ``blocks``, which
count from the clock), each under the parts seen before its build. Only where every writer's
parts are in this server's ``system.parts``: the embedded engine, not a cluster of servers
(``enabled_for``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from ingestor.clickhouse.engine import ClickHouse
from ingestor.plain_settings import ClickHouseTarget
from ingestor.report.request import ReportRequest

__all__ = ["Answers", "enabled_for"]

_STATE = """
SELECT
    (SELECT groupArray((name, uuid, metadata_modification_time))
     FROM (SELECT name, uuid, metadata_modification_time FROM system.tables
           WHERE database = currentDatabase() ORDER BY name)),
    (SELECT groupArray((table, name, modification_time))
     FROM (SELECT table, name, modification_time FROM system.parts
           WHERE database = currentDatabase() AND active ORDER BY table, name))
"""


def enabled_for(target: ClickHouseTarget) -> bool:
    """Whether ``system.parts`` sees every part a report reads: the embedded engine (ours, or
    shared with us), not a server another node may write to."""
    return target.kind in ("chdb", "shared")


class Answers:
    """The last ``size`` answers of ``build`` (none: ``size`` 0), dropped together when the
    data changes.

    ``get`` may run in several threads at once: two of them may build the same answer."""

    def __init__(self, build: Callable[[ClickHouse, ReportRequest], bytes], size: int = 8) -> None:
        self._build = build
        self._size = size
        self._lock = threading.Lock()
        self._state: object = None
        self._kept: OrderedDict[ReportRequest, bytes] = OrderedDict()

    def get(self, ch: ClickHouse, request: ReportRequest) -> bytes:
        """``build(ch, request)``, or the same bytes kept from an earlier build."""
        if not self._size or not request.keepable:
            return self._build(ch, request)
        before = _state(ch)
        with self._lock:
            if before != self._state:
                self._kept.clear()
                self._state = before
            kept = self._kept.get(request)
            if kept is not None:
                self._kept.move_to_end(request)
                return kept
        answer = self._build(ch, request)
        with self._lock:
            # Kept under the parts seen before the build: if a store came during it, the parts
            # have changed for good, so a later ``get`` drops this answer unread.
            if self._state == before:
                self._kept[request] = answer
                while len(self._kept) > self._size:
                    self._kept.popitem(last=False)
        return answer


def _state(ch: ClickHouse) -> object:
    return ch.query(_STATE)[0]
