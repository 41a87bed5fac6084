"""``ingestor report daily|monthly|session|models``: exact usage reports from ClickHouse.

The embedded ClickHouse (chdb) admits one process at a time; while ``ingestor up`` runs, its
worker holds it, so the report is then asked of the worker over HTTP (same queries, same output).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from datetime import date
from decimal import Decimal
from typing import Any

from ingestor.errors import StorageError
from ingestor.settings import Settings, load_settings

KINDS = ("daily", "monthly", "session", "models")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("report", help="usage reports (ccusage shapes)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--since", type=_day, help="first day, YYYY-MM-DD or YYYYMMDD")
    p.add_argument("--until", type=_day, help="last day, YYYY-MM-DD or YYYYMMDD")
    p.add_argument("--timezone", default="UTC", help="IANA zone for day boundaries (default UTC)")
    p.add_argument("--json", action="store_true", help="ccusage-compatible JSON")
    p.set_defaults(run=run)


def _day(text: str) -> date:
    text = text.replace("-", "")
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def build(ch: Any, kind: str, since: date | None, until: date | None, tz: str) -> dict[str, Any]:
    from ingestor.report import queries

    report: dict[str, Any] = getattr(queries, kind)(ch, since=since, until=until, tz=tz)
    return report


def run(args: argparse.Namespace) -> int:
    from ingestor.report.render import render_json, render_table

    settings = load_settings()
    try:
        report = _local(settings, args)
    except StorageError as exc:
        if settings.clickhouse.kind != "chdb":
            raise
        # Most likely the running worker holds the embedded engine: ask it instead.
        try:
            report = _from_worker(settings, args)
        except OSError:
            raise exc from None  # no worker answers either: the engine's error is the one
    print(render_json(report) if args.json else render_table(report))
    return 0


def _local(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from ingestor.sink.engine import open_clickhouse

    ch = open_clickhouse(settings.clickhouse)
    try:
        return build(ch, args.kind, args.since, args.until, args.timezone)
    finally:
        ch.close()


def _from_worker(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    query = {"tz": args.timezone}
    if args.since:
        query["since"] = args.since.isoformat()
    if args.until:
        query["until"] = args.until.isoformat()
    url = f"http://{settings.web_host}:{settings.web_port}/report/{args.kind}/?"
    with urllib.request.urlopen(url + urllib.parse.urlencode(query), timeout=60) as reply:
        report: dict[str, Any] = json.loads(reply.read(), parse_float=Decimal)
    return report
