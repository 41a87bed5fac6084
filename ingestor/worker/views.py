"""The worker's HTTP views (Faust web, bound to loopback unless configured).

* ``GET /sessions/`` — every live session aggregate this worker holds, as JSON.
* ``GET /sessions/{session_id}/`` — one session, 404 if this worker does not hold it.
* ``GET /stats/`` — counters for progress displays: messages, lines by outcome, rows stored.
* ``GET /metrics`` — Prometheus text: the worker's metrics, then the watcher's (its textfile in
  the data dir, when present; see ``obs/metrics.py``).
* ``GET /health`` — 200 or 503 with the reasons as JSON (``obs/health.py``).
* ``POST /replay/`` — store one offset range of an input topic again (``replay_view.py``).
* ``GET /verify/?dir=D`` — ClickHouse's side of ``ingestor verify`` for the files under each
  ``dir``: per file and per session tallies (``report/verify.py``).
* ``GET /verify/rollups`` — where an events rollup is not the aggregation of ``events``
  (``report/verify_topics.py``); ``POST /verify/topic`` is in ``replay_view.py``.
* ``GET /`` and ``GET /dashboard/`` — the dashboard page (``ingestor/web/``), charts over the
  views above; ``?refresh=SECONDS`` sets how often it polls. ``GET /dashboard/static/{name}`` —
  its packaged scripts and styles. ``GET /dashboard/data`` — the reports it charts in one
  answer (``{"reports": {name: report}, "sources": {name: "/report/..."}}``), each what its
  ``/report/`` view returns, the usage ones built from one read of the entries.

A request whose ``Host`` does not name this worker gets 421 (``hosts.py``: DNS rebinding); a
query parameter a view does not take, or a bad value, gets 400 naming it.

Costs are exact decimals written as JSON numbers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestor.errors import ConfigError
from ingestor.obs.health import HealthInputs, verdict
from ingestor.obs.metrics import CONTENT_TYPE, watcher_textfile
from ingestor.report.answers import Answers, enabled_for
from ingestor.report.render import render_json
from ingestor.web import DASHBOARD_REPORTS, PAGE, asset, page_headers, report_url
from ingestor.worker.hosts import HostCheck
from ingestor.worker.lag import behind, handled_offsets, partition_lag
from ingestor.worker.replay_view import register_replay
from ingestor.worker.sessions import SessionAgg

if TYPE_CHECKING:
    from ingestor.worker.state import WorkerState

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

    answers: Answers | None = None

    async def report(web: Any, request: Any, kind: str) -> Any:
        # The embedded ClickHouse admits one process: `ingestor report` asks here while we run.
        from ingestor.report.build import build_json
        from ingestor.report.request import ReportRequest

        nonlocal answers
        try:
            wanted = ReportRequest.from_query(kind, dict(request.query))
        except ConfigError as exc:
            return reply(web, {"error": str(exc)}, status=400)
        if answers is None:  # the same answer while nothing is stored (report/answers.py)
            answers = Answers(build_json, size=8 if enabled_for(state.settings.clickhouse) else 0)
        body = await asyncio.to_thread(answers.get, state.ch, wanted)
        return web.bytes(body, content_type="application/json", status=200)

    async def verify(web: Any, request: Any) -> Any:
        # The embedded ClickHouse admits one process: `ingestor verify` asks here while we run.
        from ingestor.report.verify import stored_files, stored_sessions

        dirs = request.query.getall("dir", [])
        other = [k for k in request.query if k != "dir"]
        if other or not dirs:
            return reply(web, {"error": "give one or more dir= and nothing else"}, status=400)

        def tallies() -> dict[str, Any]:
            files = stored_files(state.ch, dirs)
            sessions = stored_sessions(state.ch, files)
            return {
                "files": {
                    f: [t.valid, t.invalid, t.usage_lines, t.usage_tokens] for f, t in files.items()
                },
                "sessions": {s: [t.entries, t.tokens, str(t.cost)] for s, t in sessions.items()},
            }

        return reply(web, await asyncio.to_thread(tallies))

    async def verify_rollups(web: Any, request: Any) -> Any:
        from ingestor.report.verify_topics import rollup_differences

        async with state.lock:  # no insert half way: events and their rollups are written apart
            if state.inflight is not None:
                await state.inflight
            differences = await asyncio.to_thread(rollup_differences, state.ch)
        return reply(web, {"differences": differences})

    transcripts = state.settings.topic("transcripts")

    async def stats(web: Any, request: Any) -> Any:
        lag = partition_lag(app, state.last_offsets, state.ends)
        return reply(
            web,
            {
                "run_id": state.run_id,
                # Partitions assigned and tables recovered: producers may start
                # (see cli/up_supervise.py).
                "ready": bool(app.consumer.assignment()) and not app.rebalancing,
                "counts": dict(state.counts),
                # Rows and messages not yet confirmed by ClickHouse, the insert in flight and the
                # changed sessions' summary rows included.
                "pending_rows": state.pending_rows,
                "pending_messages": len(state.held) + state.inflight_messages,
                "flushes": state.flushes,
                # Records in input partitions not yet handled by this process (``lag.behind``).
                "behind": behind(app, state.last_offsets, state.ends),
                # Of those, records that exist only in the broker (events, ledger entries): the
                # watcher can send transcript lines again, nobody sends these again.
                "behind_unreplayable": sum(n for (t, _), n in lag.items() if t != transcripts),
                # The last offset handled of each of those partitions: `up` checks them against
                # the broker's own end offsets before a planned broker restart.
                "handled_unreplayable": {
                    f"{tp.topic}[{tp.partition}]": done
                    for tp, done in handled_offsets(app, state.last_offsets).items()
                    if tp.topic != transcripts and tp.topic in state.input_topics
                },
                "scopes_met": len(state.scopes),
                # Input partitions this member holds: several workers in a group split them.
                "assigned": sorted(
                    f"{tp.topic}[{tp.partition}]"
                    for tp in app.consumer.assignment()
                    if tp.topic in state.input_topics
                ),
            },
        )

    textfile = watcher_textfile(state.settings.data_dir)

    async def metrics(web: Any, request: Any) -> Any:
        body = await asyncio.to_thread(_exposition, state, textfile)
        return web.bytes(body, content_type=CONTENT_TYPE.split(";")[0], status=200)

    async def health(web: Any, request: Any) -> Any:
        ch_error, broker_error = await asyncio.gather(
            _clickhouse_error(state), _broker_error(app.conf.broker)
        )
        try:
            assigned = sum(1 for tp in app.consumer.assignment() if tp.topic in state.input_topics)
        except Exception:  # noqa: BLE001 - not started yet
            assigned = 0
        status, body = verdict(
            HealthInputs(
                clickhouse_error=ch_error,
                broker_error=broker_error,
                assigned=assigned,
                rebalancing=bool(app.rebalancing),
                now=time.time(),
                newest=state.metrics.newest_seconds(),
                max_staleness_s=state.settings.health_max_staleness_s,
                error_ratio=state.limit.ratio(),
                max_error_ratio=state.limit.max_ratio,
            )
        )
        return reply(web, body, status=status)

    async def dashboard(web: Any, request: Any) -> Any:
        unknown = [name for name in request.query if name != "refresh"]
        if unknown:
            return reply(web, {"error": f"unknown parameter {unknown[0]!r}"}, status=400)
        return _asset_reply(web, PAGE)

    async def dashboard_data(web: Any, request: Any) -> Any:
        from ingestor.report.build import build_many

        reports = await asyncio.to_thread(build_many, state.ch, DASHBOARD_REPORTS)
        sources = {name: report_url(r) for name, r in DASHBOARD_REPORTS.items()}
        return reply(web, {"reports": reports, "sources": sources})

    async def static(web: Any, request: Any, name: str) -> Any:
        return _asset_reply(web, name)

    def _asset_reply(web: Any, name: str) -> Any:
        found = asset(name)
        if found is None:
            return reply(web, {"error": f"no file {name!r}"}, status=404)
        return web.bytes(
            found.body, content_type=found.content_type, status=200, headers=page_headers()
        )

    app.page("/")(guarded(dashboard, query=True))
    app.page("/dashboard/")(guarded(dashboard, query=True))
    app.page("/dashboard/data")(guarded(dashboard_data))
    app.page("/dashboard/static/{name}")(guarded(static))
    app.page("/metrics")(guarded(metrics))
    app.page("/health")(guarded(health))
    app.page("/sessions/")(guarded(all_sessions))
    app.page("/sessions/{session_id}/")(guarded(one_session))
    app.page("/report/{kind}/")(guarded(report, query=True))
    app.page("/stats/")(guarded(stats))
    app.page("/verify/")(guarded(verify, query=True))
    app.page("/verify/rollups")(guarded(verify_rollups))
    register_replay(app, state, hosts)


def _exposition(state: WorkerState, textfile: Path) -> bytes:
    body = state.metrics.exposition()
    try:
        return body + textfile.read_bytes()
    except OSError:  # no watcher on this data dir (yet)
        return body


async def _clickhouse_error(state: WorkerState) -> str | None:
    try:
        await asyncio.wait_for(asyncio.to_thread(state.ch.query, "SELECT 1"), _CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"no answer to SELECT 1 within {_CHECK_TIMEOUT_S:.0f}s"
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


async def _broker_error(brokers: Any) -> str | None:
    """None once one bootstrap server accepts a TCP connection (the consumer's own connection
    state is Faust-internal; a refused or silent port is what an operator needs to see)."""
    problems = []
    for url in brokers:
        host, port = url.host or "localhost", url.port or 9092
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), _CHECK_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            problems.append(f"{host}:{port}: {exc or type(exc).__name__}")
            continue
        writer.close()
        return None
    return "; ".join(problems) or "no bootstrap server configured"


_CHECK_TIMEOUT_S = 3.0
