"""Scale-out: two workers in one consumer group split the partitions; one is killed mid-stream
(``kill -9``), the other takes its partitions over, and every total is still exact.

Both workers write one ClickHouse: a chdb directory owned by ``ingestor.local.chdb_share`` and
reached over loopback (chdb admits one process per directory and no server is installed here),
so the two workers' inserts meet in the same tables exactly as on a server.

Four dedup scopes (four machines' watchers), each on its own partition of four: what a group
can split. The expected totals are the sum of each scope's reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from pipeline import Pipeline, daily_totals, free_port, report_totals, session_totals, wait_for

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Accounting, Reference
from ingestor.local.kafka import KafkaCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
SOAK = bool(os.environ.get("INGESTOR_SOAK"))


def scopes_on_each_partition() -> list[str]:
    """One scope name per partition (the watcher keys transcripts by scope, murmur2 as Kafka)."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < PARTITIONS:
        name = f"machine-{i}"
        found.setdefault((murmur2(name.encode()) & 0x7FFFFFFF) % PARTITIONS, name)
        i += 1
    return [found[p] for p in range(PARTITIONS)]


@dataclass
class Machine:
    scope: str
    root: Path
    reference: Reference


def machines(tmp: Path, lines: int) -> list[Machine]:
    out = []
    for seed, scope in enumerate(scopes_on_each_partition(), start=70):
        root = tmp / scope
        generate(root, lines=lines, seed=seed, odd_rate=0.01)
        out.append(Machine(scope, root, Reference.load(root)))
    return out


def combined(ms: list[Machine]) -> Reference:
    fields = Accounting.__dataclass_fields__
    acc = Accounting(**{f: sum(getattr(m.reference.accounting, f) for m in ms) for f in fields})
    return Reference([e for m in ms for e in m.reference.entries], acc)


def watch(p: Pipeline, m: Machine) -> subprocess.Popen[bytes]:
    """That machine's watcher: its own scope and checkpoint (data dir)."""
    env = {**p.env, "INGESTOR_DEDUP_SCOPE": m.scope, "INGESTOR_DATA_DIR": str(m.root / "data")}
    return subprocess.Popen(
        [sys.executable, "-m", "ingestor.cli.main", "watch", str(m.root / "projects"), "--once"],
        env=env,
        cwd=m.root,
        stdout=subprocess.DEVNULL,
        stderr=open(m.root / "watch.log", "ab"),  # noqa: SIM115 - lives as long as the child
    )


def second(p: Pipeline, tmp: Path) -> Pipeline:
    """Another worker of ``p``'s group (same topics, app id, ClickHouse), on its own port."""
    (tmp / "b").mkdir()
    b = Pipeline(p.bootstrap, tmp / "b", p.clickhouse_url, tansu=p.tansu)
    b.env = {**p.env, "INGESTOR_WEB_PORT": str(free_port())}
    return b


def transcripts(stats: dict[str, Any] | None) -> set[str]:
    return {tp for tp in (stats or {}).get("assigned", []) if ".transcripts[" in tp}


def stored(*ws: Pipeline) -> int:
    return sum(int((w.stats() or {}).get("counts", {}).get("records_stored", 0)) for w in ws)


def run_failover(
    bootstrap: str,
    tmp: Path,
    url: str,
    *,
    tansu: bool,
    lines: int,
    env: dict[str, str] | None = None,
    mid_stream: Any = None,
) -> None:
    ms = machines(tmp, lines)
    reference = combined(ms)
    a = Pipeline(bootstrap, tmp, url, tansu=tansu)
    a.env.update({"INGESTOR_TOPIC_PARTITIONS": str(PARTITIONS), **(env or {})})
    a.prepare()
    b = second(a, tmp)
    a.start_worker()
    b.start_worker()
    try:
        wait_for(
            lambda: (
                len(transcripts(a.stats()) | transcripts(b.stats())) == PARTITIONS
                and transcripts(a.stats())
                and transcripts(b.stats())
            ),
            timeout_s=120,
            what="the two workers to split the partitions",
        )
        watchers = [watch(a, m) for m in ms]
        total = reference.accounting.valid
        wait_for(lambda: stored(a, b) > total // 4, timeout_s=120, what="a quarter stored")
        a.stop_worker(kill=True)  # kill -9 mid-stream: its uncommitted records are re-delivered
        if mid_stream is not None:
            mid_stream()
        for w in watchers:
            assert w.wait(timeout=300) == 0
        wait_for(
            lambda: len(transcripts(b.stats())) == PARTITIONS,
            timeout_s=120,
            what="the survivor to take every partition",
        )
        try:
            b.wait_stored(reference, timeout_s=180)
            # Every line can be stored (by the killed worker) while its last batch, unacked, is
            # still to reach the survivor, which writes that batch's sessions' summary rows.
            b.wait_settled()
        except AssertionError as exc:
            raise AssertionError(f"{exc}; survivor: {b.stats()}") from None
        report = b.get("/report/daily/")
        assert report_totals(report) == daily_totals(reference)
        b.stop_worker()
    finally:
        a.stop_worker(kill=True)
        b.stop_worker(kill=True)
    with a.clickhouse() as ch:
        [(lines_stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        [(dead,)] = ch.query("SELECT count() FROM dead_letters FINAL")
        summaries = {
            row[0]: tuple(row[1:])
            for row in ch.query(
                "SELECT session_id, input_tokens, output_tokens, cache_creation_tokens, "
                "cache_read_tokens, cost_usd, messages FROM session_summaries FINAL "
                "WHERE messages > 0"
            )
        }
    assert (lines_stored, dead) == (reference.accounting.valid, reference.accounting.invalid)
    expected = session_totals(reference)
    wrong = {s: (summaries.get(s), v) for s, v in expected.items() if summaries.get(s) != v}
    assert not wrong, f"{len(wrong)} of {len(expected)} session summaries differ: {wrong}"


def test_two_workers_on_tansu_survive_a_kill(
    kafka_bootstrap: str, shared_clickhouse: str, tmp_path: Path
) -> None:
    on_tansu = not os.environ.get("INGESTOR_TEST_KAFKA_BOOTSTRAP")
    lines = 20_000 if SOAK else 3000
    run_failover(kafka_bootstrap, tmp_path, shared_clickhouse, tansu=on_tansu, lines=lines)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="3 Apache Kafka brokers: make soak (INGESTOR_SOAK=1)")
@pytest.mark.parametrize(
    "broker_kill", [False, True], ids=["worker-kill", "worker-and-broker-kill"]
)
def test_two_workers_on_three_kafka_brokers(
    kafka3: KafkaCluster, shared_clickhouse: str, tmp_path: Path, broker_kill: bool
) -> None:
    run_failover(
        kafka3.bootstrap,
        tmp_path,
        shared_clickhouse,
        tansu=False,
        lines=6000,
        env={"INGESTOR_TOPIC_REPLICATION": "3"},
        # One broker of three, with the partitions it leads and maybe the group's coordinator.
        mid_stream=(lambda: kafka3.kill(2)) if broker_kill else None,
    )
