"""The dashboard page the worker serves (``/`` and ``/dashboard/``): static files packaged with
ingestor, Chart.js vendored from npm (``tools/vendor_chartjs.py``), no CDN, so it works offline.

The page draws only what the worker's JSON views return and polls them: ``/sessions/``,
``/stats/`` and ``/dashboard/data``, the reports of ``DASHBOARD_REPORTS`` in one answer, each
the JSON its ``/report/<kind>/?<query>`` returns (``build_many``: the four usage reports share
one read of the counted entries instead of four). Nothing here reads ClickHouse. Pure: a name
in, bytes and headers out, from a fixed table of the files in ``static/`` (a name outside it is
not found, so no path reaches the file system).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from ingestor.report.request import ReportRequest

__all__ = ["DASHBOARD_REPORTS", "PAGE", "STATIC", "Asset", "asset", "page_headers", "report_url"]

STATIC = Path(__file__).resolve().parent / "static"
PAGE = "index.html"
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".md": "text/plain",
}
# Everything from this origin only: a page that loaded anything from elsewhere would not work
# offline, and the browser test fails on the console error a blocked load causes.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


# What the page charts, by the name ``dashboard.js`` reads it under.
DASHBOARD_REPORTS = {
    "daily": ReportRequest("daily"),
    "projects": ReportRequest("daily", instances=True),
    "machines": ReportRequest("daily", machines=True),
    "blocks": ReportRequest("blocks"),
    "errors": ReportRequest("errors"),
    "latency": ReportRequest("latency"),
    "ledger": ReportRequest("ledger"),
    "alerts": ReportRequest("alerts", limit=20),
}


def report_url(request: ReportRequest) -> str:
    """The ``/report/`` view answering ``request`` alone."""
    query = urlencode(request.to_query())
    return f"/report/{request.kind}/" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str


def _names() -> frozenset[str]:
    return frozenset(p.name for p in STATIC.iterdir() if p.is_file() and p.suffix in _TYPES)


_KNOWN = _names()


def asset(name: str) -> Asset | None:
    """The packaged file ``name`` (a bare file name from ``static/``), else None."""
    if name not in _KNOWN:
        return None
    path = STATIC / name
    return Asset(path.read_bytes(), _TYPES[path.suffix])


def page_headers() -> dict[str, str]:
    """Headers for every dashboard response: the page polls, so nothing is cached stale."""
    return {
        "Content-Security-Policy": _CSP,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
