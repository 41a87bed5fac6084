"""Usage reports from ClickHouse: counted entries (``entries``) into ccusage's report shapes
(``build``), asked for by a ``ReportRequest`` (``request``), rendered by ``render``."""

from ingestor.report.build import build
from ingestor.report.request import KINDS, ReportRequest

__all__ = ["KINDS", "ReportRequest", "build"]
