"""``deploy/``: the alert rules and the Grafana dashboard parse and name only real things."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from ingestor.obs.metrics import all_metric_names

ROOT = Path(__file__).resolve().parents[3]
_CREATED = re.compile(
    r"CREATE\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I
)
_FROM = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)", re.I)


def schema_tables() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "schema").glob("*.sql")))
    return set(_CREATED.findall(text))


def dashboard_queries() -> list[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    return [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]


def test_alert_rules_parse_and_name_exported_metrics() -> None:
    rules: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    exported = all_metric_names()
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert {"IngestorConsumerLagGrowing", "IngestorDeadLetterRate", "IngestorStale"} <= {
        r["alert"] for r in alerts
    }
    for rule in alerts:
        named = set(re.findall(r"\bingestor_[a-z_]+", rule["expr"]))
        assert named, rule["alert"]
        assert named <= exported, (rule["alert"], named - exported)
        assert rule["annotations"]["summary"]


def test_dashboard_parses_and_reads_real_tables() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    tables = schema_tables()
    assert {"transcript_lines", "usage_dedup", "dead_letters"} <= tables
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["type"] == "grafana-clickhouse-datasource"
    queries = dashboard_queries()
    assert queries
    read = set()
    for sql in queries:
        named = {n for n in _FROM.findall(sql) if n != "("}
        assert named, sql
        read |= named
    assert read <= tables, read - tables
