"""Worker state rebuilt from ClickHouse equals what the worker built in stream order."""

from __future__ import annotations

import pickle
from pathlib import Path

import orjson
import pytest

from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.errors import Location
from ingestor.producer.discover import find_jsonl, order_key, project_of
from ingestor.producer.lines import parse_chunk
from ingestor.sink.engine import ClickHouse
from ingestor.sink.write import write_batch
from ingestor.wire import TranscriptSource, decode_message, encode_envelope
from ingestor.worker import restore
from ingestor.worker.dedup import DedupIndex
from ingestor.worker.process import process_transcripts
from ingestor.worker.restore import load_index, session_seeds
from ingestor.worker.sessions import SessionAgg

pytestmark = pytest.mark.integration


def _ingest(ch: ClickHouse, root: Path, scope: str) -> tuple[dict[str, SessionAgg], DedupIndex]:
    """Run the pure worker steps over ``root`` in ccusage order and store the rows."""
    index = DedupIndex()
    sessions: dict[str, SessionAgg] = {}
    files = find_jsonl([root / "projects"])
    first = {}
    chunks = {}
    for path in files:
        data = Path(path).read_bytes()
        chunk = parse_chunk(data, 0, max_record_bytes=1 << 20)
        chunks[path], first[path] = chunk, chunk.first_ts
    for offset, path in enumerate(sorted(files, key=order_key)):
        source = TranscriptSource(path, project_of(path), 0, first[path], scope)
        records = [orjson.Fragment(r) for r in chunks[path].records]
        envelope = decode_message("transcript", encode_envelope("transcript", records, source))
        out = process_transcripts(
            envelope, Location("t", 0, offset), lambda _: index, bad_line_max_bytes=4096
        )
        for sid in set(out.adds) | set(out.retracts):
            agg = sessions.setdefault(sid, SessionAgg(sid, out.project))
            agg.apply_envelope(offset, out.adds.get(sid, ()), out.retracts.get(sid, ()))
        write_batch(ch, out.rows, token=f"t{offset}", retries=0, backoff_s=0.1)
    return sessions, index


def test_seeds_and_index_restore_what_the_stream_built(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    generate(tmp_path / "c", lines=3000, seed=9)
    built, built_index = _ingest(clickhouse, tmp_path / "c", "host-a")
    seeds = dict((agg.session_id, (scope, agg)) for scope, agg in session_seeds(clickhouse))
    assert {sid for sid, agg in built.items() if agg.totals.messages} == set(seeds)
    for sid, (scope, agg) in seeds.items():
        assert scope == "host-a"
        assert agg.totals == built[sid].totals
        assert agg.models == built[sid].models
        assert agg.tool_uses == built[sid].tool_uses
    reference = Reference.load(tmp_path / "c")
    assert sum(a.totals.messages for _, a in seeds.values()) == reference.accounting.counted
    index = load_index(clickhouse, "host-a")
    assert len(index) == len(built_index) > 0
    assert len(load_index(clickhouse, "other")) == 0


def test_restore_in_pieces_equals_restore_at_once(
    clickhouse: ClickHouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of files (load_index) and hash chunks of usage_dedup (session_seeds) bound the
    memory; the result is the same as reading everything at once."""
    generate(tmp_path / "c", lines=3000, seed=9)
    _ingest(clickhouse, tmp_path / "c", "host-a")
    whole_seeds = session_seeds(clickhouse)
    whole_index = load_index(clickhouse, "host-a")
    monkeypatch.setattr(restore, "_PAGE_LINES", 50)
    monkeypatch.setattr(restore, "_SEED_LINES", 300)
    pages = len(restore._file_pages(clickhouse, "has_usage = 1", 50))
    assert pages > 3
    calls: list[str] = []
    # Each piece is progress for the worker's watchdog (a long restore is not a stall).
    assert session_seeds(clickhouse, progress=lambda: calls.append("seeds")) == whole_seeds
    assert calls.count("seeds") > 1
    assert session_seeds(clickhouse, "host-a") == whole_seeds
    assert session_seeds(clickhouse, "other") == []
    paged = load_index(clickhouse, "host-a", lambda: calls.append("index"))
    assert calls.count("index") == pages
    assert len(paged) == len(whole_index) > 0
    assert pickle.dumps(paged) == pickle.dumps(whole_index)  # same state, same order
