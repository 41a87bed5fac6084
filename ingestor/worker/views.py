"""The worker's HTTP views (Faust web, bound to loopback unless configured).

* ``GET /sessions/`` — every live session aggregate this worker holds, as JSON.
* ``GET /sessions/{session_id}/`` — one session, 404 if this worker does not hold it.
* ``GET /stats/`` — counters for progress displays: messages, lines by outcome, rows stored.

A request whose ``Host`` does not name this worker gets 421 (``hosts.py``: DNS rebinding); a
query parameter a view does not take, or a bad value, gets 400 naming it.

Costs are exact decimals written as JSON numbers.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ingestor.errors import ConfigError
from ingestor.report.render import render_json
from ingestor.worker.hosts import HostCheck
from ingestor.worker.sessions import SessionAgg

if TYPE_CHECKING:
    from ingestor.worker.app import WorkerState

__all__ = ["register_views"]


def register_views(app: Any, sessions: Any, state: WorkerState) -> None:
    def reply(web: Any, body: Any, status: int = 200) -> Any:
        return web.bytes(render_json(body).encode(), content_type="application/json", status=status)

    hosts = HostCheck(state.settings.web_host, state.settings.web_allowed_hosts)

    def guarded(view: Any, *, query: bool = False) -> Any:
        async def checked(web: Any, request: Any, **kwargs: Any) -> Any:
            if not hosts.allows(request.headers.get("Host")):
                return reply(web, {"error": "unknown Host header"}, status=421)
            if not query and request.query:
                name = next(iter(request.query))
                return reply(web, {"error": f"unknown parameter {name!r}"}, status=400)
            return await view(web, request, **kwargs)

        return checked

    async def all_sessions(web: Any, request: Any) -> Any:
        values = [SessionAgg.decode(raw).as_json() for raw in sessions.values() if raw is not None]
        values.sort(key=lambda s: s["lastActivity"] or "", reverse=True)
        return reply(web, {"sessions": values})

    async def one_session(web: Any, request: Any, session_id: str) -> Any:
        raw = sessions.get(session_id.encode())
        if raw is None:
            return reply(web, {"error": f"unknown session {session_id!r}"}, status=404)
        return reply(web, SessionAgg.decode(raw).as_json())

    async def report(web: Any, request: Any, kind: str) -> Any:
        # The embedded ClickHouse admits one process: `ingestor report` asks here while we run.
        from ingestor.report.build import build
        from ingestor.report.request import ReportRequest

        try:
            wanted = ReportRequest.from_query(kind, dict(request.query))
        except ConfigError as exc:
            return reply(web, {"error": str(exc)}, status=400)
        body = await asyncio.to_thread(build, state.ch, wanted)
        return reply(web, body)

    async def stats(web: Any, request: Any) -> Any:
        return reply(
            web,
            {
                "run_id": state.run_id,
                # Partitions assigned and tables recovered: producers may start (see cli/up.py).
                "ready": bool(app.consumer.assignment()) and not app.rebalancing,
                "counts": dict(state.counts),
                # Rows and messages not yet confirmed by ClickHouse, the insert in flight included.
                "pending_rows": state.batch.size + state.inflight_rows,
                "pending_messages": len(state.held) + state.inflight_messages,
                "flushes": state.flushes,
                # Records in input partitions not yet handled by this process (see _behind).
                "behind": _behind(app, state),
                "projects_indexed": len(state.indexes),
            },
        )

    app.page("/sessions/")(guarded(all_sessions))
    app.page("/sessions/{session_id}/")(guarded(one_session))
    app.page("/report/{kind}/")(guarded(report, query=True))
    app.page("/stats/")(guarded(stats))


def _behind(app: Any, state: WorkerState) -> int | None:
    """Records below the high-watermarks that this process neither handled nor found committed.

    Counted per input partition from the last fetch's high-watermark; None while unassigned. The
    committed offset may be either the next record's (Kafka's) or the last acked (Faust's): the
    comparison allows both, so a fully consumed partition counts 0 either way.
    """
    consumer = app.consumer
    try:
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001 - not started yet
        return None
    if not assigned:
        return None
    changelogs = app.conf.id + "-"  # Faust names them "{app id}-{table}-changelog"
    total = 0
    for tp in assigned:
        if tp.topic.startswith(changelogs):
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        done = max(
            state.last_offsets.get((tp.topic, tp.partition), -1),
            consumer._committed_offset.get(tp) or -1,
        )
        total += max(0, highwater - 1 - done)
    return total
