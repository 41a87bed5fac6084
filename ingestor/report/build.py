"""A report, from what ClickHouse holds: counted entries (``entries.py``) into the pure report
functions of ``ingestor.usage.reports`` (ccusage's JSON shapes), plus two of ours: ``models``
(per model), ``skipped`` (lines kept out of the counts, by rule) and ``machines`` (the same
report once per dedup scope, i.e. per machine, which ccusage declined to build: its issues #287
and #1325)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ingestor.report.render import render_json
from ingestor.report.request import EVENT_KINDS, ReportRequest
from ingestor.usage import reports
from ingestor.usage.entry import Entry
from ingestor.usage.reports_core import Json, Summary, local_date, totals_json, zone

# What reads ClickHouse is loaded by the function that reads it: ``ingestor.report`` (this
# module) is loaded by ``ingestor report`` asking the running worker, which needs none of it
# (the engine's modules bring pydantic, pyarrow and chdb: most of that command's start).
if TYPE_CHECKING:
    from ingestor.clickhouse.engine import ClickHouse
    from ingestor.report.counted import Summed

__all__ = [
    "build",
    "build_from_entries",
    "build_json",
    "build_many",
    "report_entries",
    "skipped",
]


def build(ch: ClickHouse, request: ReportRequest, *, now_ms: int | None = None) -> Json:
    """``request``'s report over every counted entry ClickHouse holds."""
    from ingestor.report.events import build_event_report
    from ingestor.report.ops import OPS_KINDS, build_ops_report
    from ingestor.report.session_columns import session_report

    if request.kind == "skipped":
        return skipped(ch)
    if request.kind in OPS_KINDS:
        return build_ops_report(ch, request)
    if request.kind in EVENT_KINDS:
        return build_event_report(ch, request)
    summed = _session_columns(ch, request)
    if summed is not None:
        return session_report(summed, tz=request.tz, since=request.since, until=request.until)
    return build_from_entries(report_entries(ch, request), request, now_ms=now_ms)


def build_json(ch: ClickHouse, request: ReportRequest, *, now_ms: int | None = None) -> bytes:
    """``render_json(build(ch, request))``, encoded: what the worker answers. The session report
    is written from its summed columns (``session_columns.py``) when the winners hold them."""
    from ingestor.report.session_columns import session_json, session_report

    summed = _session_columns(ch, request)
    if summed is not None:
        tz, since, until = request.tz, request.since, request.until
        text = session_json(summed, tz=tz, since=since, until=until)
        if text is None:
            return render_json(session_report(summed, tz=tz, since=since, until=until)).encode()
        return text
    return render_json(build(ch, request, now_ms=now_ms)).encode()


def _session_columns(ch: ClickHouse, request: ReportRequest) -> Summed | None:
    """The summed groups a session report is built from, when it reads the winners' sums (not
    per machine, not ``--project``, not a day cut unlike Python's)."""
    from ingestor.clickhouse.winners import winners_ready
    from ingestor.report.counted import summed_columns

    if request.kind != "session" or request.machines:
        return None
    if _source(request, winners_ready(ch))[0] != "winners":
        return None
    by_file, by_day = _grain(request)
    return summed_columns(ch, mode=request.mode, tz=request.tz, by_file=by_file, by_day=by_day)


# Reports that only add entries up per day and file: summed in ClickHouse (``counted.py``).
_ROLLUP_KINDS = frozenset({"daily", "weekly", "monthly", "session", "models"})


def report_entries(
    ch: ClickHouse,
    request: ReportRequest,
    *,
    ready: bool | None = None,
    grain: tuple[bool, bool] | None = None,
) -> Sequence[Entry]:
    """What ``request``'s report is built from: the winners kept at write time when the table
    holds them all, else (and for ``--project``, deduplicated within the project, as ccusage
    does) the rule run over every stored line. ``ready``: ``winners_ready(ch)``, when known;
    ``grain``: a finer one than ``request`` needs (``_grain``), to share the entries."""
    from ingestor.clickhouse.winners import winners_ready
    from ingestor.report.counted import line_entries, rollup_entries
    from ingestor.report.entries import counted_entries

    if _source(request, winners_ready(ch) if ready is None else ready)[0] == "winners":
        if request.kind in _ROLLUP_KINDS:
            by_file, by_day = _grain(request) if grain is None else grain
            rolled = rollup_entries(
                ch, mode=request.mode, tz=request.tz, by_file=by_file, by_day=by_day
            )
            if rolled is not None:
                return rolled
        return line_entries(ch, mode=request.mode)
    return counted_entries(ch, mode=request.mode, project=request.project)


def _grain(request: ReportRequest) -> tuple[bool, bool]:
    """Whether ``request``'s summed entries keep files apart, and days: only the session
    report and ``--instances`` read an entry's file; the session report reads days only to
    filter them. Finer entries build the same report."""
    if request.kind == "session":
        return True, request.since is not None or request.until is not None
    return request.instances, True


def _source(request: ReportRequest, ready: bool) -> tuple[str | None, ...]:
    """Which entries ``report_entries`` reads for ``request``: equal for requests that can share
    one read (summed entries at the finest grain any of them needs, ``build_many``)."""
    if request.project is None and ready:
        grain = "rollup" if request.kind in _ROLLUP_KINDS else "lines"
        return ("winners", request.mode.value, grain, request.tz)
    return ("rule", request.mode.value, request.project)


def build_many(
    ch: ClickHouse, requests: Mapping[str, ReportRequest], *, now_ms: int | None = None
) -> dict[str, Json]:
    """Each of ``requests``' reports, as ``build`` returns it, under the same name. Usage reports
    that read the same entries share one read of them: reading the entries is nearly all of a
    usage report's cost, and the dashboard wants four at once."""
    from ingestor.clickhouse.winners import winners_ready

    now = int(time.time() * 1000) if now_ms is None else now_ms
    ready = winners_ready(ch)
    usage = {
        name: r
        for name, r in requests.items()
        if r.kind != "skipped" and r.kind not in EVENT_KINDS  # ops kinds among them
    }
    grains: dict[tuple[str | None, ...], tuple[bool, bool]] = {}
    for request in usage.values():
        if request.kind in _ROLLUP_KINDS:
            key = _source(request, ready)
            by_file, by_day = grains.get(key, (False, False))
            wanted = _grain(request)
            grains[key] = (by_file or wanted[0], by_day or wanted[1])
    shared: dict[tuple[str | None, ...], Sequence[Entry]] = {}
    out: dict[str, Json] = {}
    for name, request in requests.items():
        if name not in usage:
            out[name] = build(ch, request, now_ms=now)
            continue
        key = _source(request, ready)
        if key not in shared:
            shared[key] = report_entries(ch, request, ready=ready, grain=grains.get(key))
        out[name] = build_from_entries(shared[key], request, now_ms=now)
    return out


def build_from_entries(
    entries: Sequence[Entry], request: ReportRequest, *, now_ms: int | None = None
) -> Json:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if not request.machines:
        return _one(entries, request, now)
    scopes = sorted({e.scope for e in entries})
    per_scope = [_one([e for e in entries if e.scope == s], request, now) for s in scopes]
    total = Summary()
    for entry in entries:
        total.add(entry)
    return {
        "machines": [{"machine": s, **r} for s, r in zip(scopes, per_scope, strict=True)],
        "totals": totals_json([total]),
    }


def _one(entries: Sequence[Entry], r: ReportRequest, now_ms: int) -> Json:
    common: dict[str, Any] = {"tz": r.tz, "since": r.since, "until": r.until}
    if r.kind == "daily":
        return reports.daily(
            entries, **common, order=r.order, instances=r.instances, project=r.project,
            last=r.last, now_ms=now_ms,
        )  # fmt: skip
    if r.kind == "weekly":
        return reports.weekly(
            entries, **common, order=r.order, start_of_week=r.start_of_week, last=r.last,
            now_ms=now_ms,
        )  # fmt: skip
    if r.kind == "monthly":
        return reports.monthly(entries, **common, order=r.order, last=r.last, now_ms=now_ms)
    if r.kind == "session":
        return reports.session(entries, **common)
    if r.kind == "blocks":
        return reports.blocks(
            entries, **common, now_ms=now_ms, order=r.order, active=r.active, recent=r.recent,
            token_limit=r.token_limit, session_length=r.session_length,
        )  # fmt: skip
    return _models(entries, r)


def skipped(ch: ClickHouse) -> Json:
    """Ours: how many transcript lines each rule kept out of the counts (ccusage only has
    ``--debug``). A ccusage rule or ``out_of_range`` is named in the reason's parentheses; other
    dead letters (not JSON, not an object, blank, invalid for our tables) by their reason."""
    # Imported here: the metrics module (prometheus_client) is a tenth of `ingestor report`'s
    # start, and only this report reads it.
    from ingestor.obs.metrics import rule_of

    counts: dict[str, int] = {}
    for reason, lines in ch.query(
        "SELECT reason, count() FROM dead_letters FINAL WHERE kind = 'transcript' GROUP BY reason"
    ):
        rule = rule_of(str(reason))
        counts[rule] = counts.get(rule, 0) + int(lines)
    rows = [{"rule": r, "lines": n} for r, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    return {"skipped": rows, "totals": {"lines": sum(counts.values())}}


def _models(entries: Sequence[Entry], r: ReportRequest) -> Json:
    """Ours: one row per model, costliest first; same filters as the daily report."""
    days = reports.daily(entries, tz=r.tz, since=r.since, until=r.until)
    kept_days = {row["date"] for row in days["daily"]}
    tz = zone(r.tz)
    per_model: dict[str, Summary] = {}
    total = Summary()
    for entry in entries:
        if local_date(entry.timestamp_ms, tz).isoformat() not in kept_days:
            continue
        total.add(entry)
        if entry.model is not None:
            per_model.setdefault(entry.model, Summary()).add(entry)
    ordered = sorted(per_model.items(), key=lambda kv: (-kv[1].cost, kv[0]))
    rows = []
    for name, s in ordered:
        row = s.json(modelName=name)
        rows.append({k: row[k] for k in _MODEL_KEYS} | {"cost": s.cost})
    return {"models": rows, "totals": totals_json([total])}


_MODEL_KEYS = (
    "modelName", "inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens",
    "totalTokens",
)  # fmt: skip
