"""ccusage-shaped usage reports from ClickHouse, and their rendering."""

from ingestor.report.queries import daily, models, monthly, session
from ingestor.report.render import render_json, render_table

__all__ = ["daily", "models", "monthly", "render_json", "render_table", "session"]
