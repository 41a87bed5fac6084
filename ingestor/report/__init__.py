"""Usage reports from ClickHouse: counted entries (``entries``) into ccusage's report shapes
(``build``), asked for by a ``ReportRequest`` (``request``), rendered by ``render``.

``build`` is loaded on first use: ``ingestor report`` asking the running worker reads only
``request``, and ``build`` brings the engine's modules (a fifth of that command's start)."""

from typing import TYPE_CHECKING, Any

from ingestor.report.request import KINDS, ReportRequest

if TYPE_CHECKING:
    from ingestor.report.build import build

__all__ = ["KINDS", "ReportRequest", "build"]


def __getattr__(name: str) -> Any:
    if name == "build":
        from ingestor.report.build import build

        return build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
