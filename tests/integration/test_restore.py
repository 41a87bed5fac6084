"""Session aggregates rebuilt from ClickHouse equal those the worker built from the winners'
changes as each batch was stored."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ingestor.clickhouse.engine import ClickHouse
from ingestor.clickhouse.write import write_batch
from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.errors import Location
from ingestor.producer.discover import find_jsonl, order_key, project_of
from ingestor.producer.lines import parse_chunk
from ingestor.usage.winners import CountedChange
from ingestor.wire import TranscriptSource, decode_message, encode_envelope
from ingestor.worker import restore
from ingestor.worker.process import process_transcripts
from ingestor.worker.restore import session_seeds
from ingestor.worker.sessions import SessionAgg, by_session

pytestmark = pytest.mark.integration


def _ingest(
    ch: ClickHouse, root: Path, scope: str, per_batch: int, reverse: bool
) -> tuple[dict[str, SessionAgg], int]:
    """Run the pure worker steps over ``root`` in ccusage's file order (or against it), store the
    rows ``per_batch`` files at a time, and apply each store's changes to the sessions, as the
    worker does."""
    sessions: dict[str, SessionAgg] = {}
    retracted = 0
    files = sorted(find_jsonl([root / "projects"]), key=order_key, reverse=reverse)
    batches = [files[i : i + per_batch] for i in range(0, len(files), per_batch)]
    for n, batch in enumerate(batches):
        rows: dict[str, list[object]] = {}
        for offset, path in enumerate(batch):
            chunk = parse_chunk(Path(path).read_bytes(), 0, max_record_bytes=1 << 20)
            source = TranscriptSource(path, project_of(path), 0, chunk.first_ts, scope)
            records = [orjson.Fragment(r) for r in chunk.records]
            envelope = decode_message("transcript", encode_envelope("transcript", records, source))
            out = process_transcripts(envelope, Location("t", 0, offset), bad_line_max_bytes=4096)
            for table, table_rows in out.rows.items():
                rows.setdefault(table, []).extend(table_rows)
        changes: list[CountedChange] = []
        write_batch(ch, rows, token=f"t{n}", retries=0, backoff_s=0.1, changes=changes)  # type: ignore[arg-type]
        retracted += sum(c.sign < 0 for c in changes)
        for sid, (project, of_session) in by_session(changes).items():
            sessions.setdefault(sid, SessionAgg(sid, project)).apply(of_session)
    return sessions, retracted


@pytest.mark.parametrize(("per_batch", "reverse"), [(7, False), (1, True)])
def test_seeds_restore_what_the_changes_built(
    clickhouse: ClickHouse, tmp_path: Path, per_batch: int, reverse: bool
) -> None:
    generate(tmp_path / "c", lines=3000, seed=9)
    built, retracted = _ingest(clickhouse, tmp_path / "c", "host-a", per_batch, reverse)
    # Files against ccusage's order: copies counted first lose to those read later.
    assert (retracted > 0) == reverse
    seeds = {agg.session_id: (scope, agg) for scope, agg in session_seeds(clickhouse)}
    assert {sid for sid, agg in built.items() if agg.totals.messages} == set(seeds)
    calls: list[str] = []
    for sid, (scope, agg) in seeds.items():
        assert scope == "host-a"
        assert agg.project == built[sid].project
        assert agg.totals == built[sid].totals
        assert agg.models == built[sid].models
        assert agg.tool_uses == {k: v for k, v in built[sid].tool_uses.items() if v}
    assert any(agg.tool_uses for _, agg in seeds.values())
    reference = Reference.load(tmp_path / "c")
    assert sum(a.totals.messages for _, a in seeds.values()) == reference.accounting.counted
    assert session_seeds(clickhouse, "host-a", lambda: calls.append("seeds")) == list(
        seeds.values()
    )
    assert calls == ["seeds"]  # progress for the worker's watchdog
    assert session_seeds(clickhouse, "other") == []


def test_seeds_in_chunks_are_the_seeds_at_once(
    clickhouse: ClickHouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks by a hash of the line bound ClickHouse's memory; the result is the same."""
    generate(tmp_path / "c", lines=3000, seed=9)
    _ingest(clickhouse, tmp_path / "c", "host-a", 1, True)
    whole = session_seeds(clickhouse)
    monkeypatch.setattr(restore, "_SEED_ROWS", 300)
    calls: list[str] = []
    assert session_seeds(clickhouse, progress=lambda: calls.append("chunk")) == whole
    assert len(calls) > 1
