"""Hostile files and lines through the whole pipeline (issue 7, rows 3, 4, 5 and 15).

One tree holds an unreadable file, symlinks out of the tree (to a file, to a directory), lines
carrying a unique marker (a prompt, a tool result, a truncated line, a non-JSON line, a line too
long to read, a line whose kept fields are too large) and a 70 MB valid usage line; an event with
the marker in its free text goes to the events topic. Every valid line must be counted, exactly
as the reference reads the files, and the marker must be nowhere: not in any ClickHouse table,
not in the dead-letter topic, not in the transcripts topic.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pipeline import Pipeline, wait_for
from topic_reader import read_topic

from ingestor.corpus import reference as reference_module
from ingestor.corpus.generate import generate
from ingestor.corpus.reference import Reference
from ingestor.producer import tail as tail_module
from ingestor.wire import encode_envelope

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARK = "HOSTILE-MARKER-5c1e9d"
LINE_MAX = 72 << 20  # the 70 MB line fits, the 73 MB one does not


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Pipeline]:
    url = os.environ.get("INGESTOR_TEST_CLICKHOUSE_URL") or f"chdb://{tmp_path / 'chdb'}"
    p = Pipeline(kafka_bootstrap, tmp_path, url)
    p.env["INGESTOR_LINE_MAX_BYTES"] = str(LINE_MAX)
    p.prepare()
    try:
        yield p
    finally:
        p.stop_worker(kill=True)


def deny_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may run as root, whom permission bits do not stop: refuse a file without read
    permission as the kernel would refuse a user, for the watcher and the reference alike."""
    real = tail_module.open_regular

    def open_regular(path: str) -> int:
        if not os.stat(path).st_mode & 0o444:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(tail_module, "open_regular", open_regular)
    monkeypatch.setattr(reference_module, "open_regular", open_regular)


def usage(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "assistant",
        "timestamp": f"2025-03-0{1 + n % 5}T10:00:00.000Z",
        "sessionId": "hostile",
        "requestId": f"req_hostile_{n}",
        "version": "1.0.0",
        "cwd": "/home/x",
        "message": {
            "id": f"msg_hostile_{n}",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": f"{MARK} answer {n}"}],
            "usage": {"input_tokens": 1000 + n, "output_tokens": 100 + n},
        },
        **extra,
    }


def line(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"


def build_tree(tmp_path: Path) -> Path:
    corpus = tmp_path / "claude"
    generate(corpus, lines=600, seed=23)
    project = corpus / "projects" / "-home-hostile"
    project.mkdir(parents=True)
    prompt = {
        "type": "user",
        "timestamp": "2025-03-01T09:59:00.000Z",
        "sessionId": "hostile",
        "message": {"role": "user", "content": f"please {MARK} the prompt"},
    }
    tool_result = {
        "type": "user",
        "timestamp": "2025-03-01T09:59:30.000Z",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": MARK}],
        },
        "toolUseResult": {"stdout": MARK},
    }
    big_cwd = {"type": "user", "timestamp": "2025-03-01T09:59:40Z", "cwd": f"/{MARK}" * 200_000}
    skipped = usage(90, version="not semver")  # ccusage skips it: structure only, no content
    with (project / "hostile.jsonl").open("wb") as out:
        out.write(line(prompt) + line(tool_result) + line(usage(1)))
        out.write(b'{"type":"user","message":{"content":"' + MARK.encode() + b" truncated\n")
        out.write(MARK.encode() + b" is not JSON at all\n")
        out.write(line(big_cwd) + line(skipped))
        out.write(b'{"type":"user","text":"' + (MARK.encode() + b" ") * (73 * (1 << 20) // 22))
        out.write(b'"}\n')
        out.write(line(usage(2)))
    # 70 MB of content and 20,000 tool uses on one valid usage line: it must count.
    huge = usage(3)
    huge["message"]["content"] = [
        {"type": "text", "text": (MARK + " ") * (70 * (1 << 20) // 22)},
        *({"type": "tool_use", "name": "Bash", "input": {"c": MARK}} for _ in range(20_000)),
    ]
    (project / "huge.jsonl").write_bytes(line(usage(4)) + line(huge) + line(usage(5)))
    assert (project / "huge.jsonl").stat().st_size > 70 << 20
    # Unreadable: its lines are not read (and not counted) while it stays so.
    locked = project / "locked.jsonl"
    locked.write_bytes(line(usage(6)) + line(usage(7)))
    locked.chmod(0)
    # Out of the tree through symlinks: a file, /etc/passwd-like, and a directory.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(f"root:x:0:0:{MARK}:/root:/bin/bash\n".encode())
    (outside / "other.jsonl").write_bytes(line(usage(8)))
    (project / "passwd.jsonl").symlink_to(outside / "passwd")
    (project / "other.jsonl").symlink_to(outside / "other.jsonl")
    (corpus / "projects" / "-linked").symlink_to(outside, target_is_directory=True)
    return corpus


def send_events(pipeline: Pipeline) -> None:
    from aiokafka import AIOKafkaProducer

    ts = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    good = {
        "event_id": "h1",
        "event_type": "prompt_call",
        "project_id": "p",
        "timestamp": ts,
        "prompt": MARK,  # not a field of ours: ignored, never stored
        "response": MARK,
    }
    bad = {
        "event_id": "h2",
        "event_type": "error",
        "project_id": "p",
        "error_type": "boom",
        "error_message": MARK,
        "prompt": MARK,
    }  # no timestamp: dead-lettered

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
        await producer.start()
        try:
            value = encode_envelope("event", [good, bad])
            await producer.send_and_wait(pipeline.settings.topic("events"), value, key=b"p")
            await producer.send_and_wait(
                pipeline.settings.topic("events"), MARK.encode() + b" not an envelope", key=b"p"
            )
        finally:
            await producer.stop()

    asyncio.run(produce())


def test_hostile_tree_counts_every_valid_line_and_keeps_no_marker(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deny_unreadable(monkeypatch)
    corpus = build_tree(tmp_path)
    reference = Reference.load(corpus, max_line_bytes=LINE_MAX)
    counted = {e.session_id for e in reference.entries}
    assert "hostile" in counted and len(reference.entries) > 5
    ids = {(e.input_tokens, e.output_tokens) for e in reference.entries}
    assert {(1001, 101), (1002, 102), (1003, 103), (1004, 104), (1005, 105)} <= ids
    assert not {(1006, 106), (1007, 107), (1008, 108)} & ids  # unreadable, symlinked: not read

    pipeline.start_worker()
    assert pipeline.send(corpus) == reference.accounting.lines
    send_events(pipeline)
    pipeline.wait_stored(reference)
    expected_dead = reference.accounting.invalid + 2  # + the bad event, the bad message
    dead_topic = pipeline.settings.topic("dead-letters")

    def settled() -> bool:
        stats = pipeline.stats()
        if stats is None or stats["pending_rows"]:
            return False
        return (
            len(read_topic(pipeline.bootstrap, dead_topic, expected=expected_dead + 1, timeout_s=2))
            >= expected_dead
        )

    wait_for(settled, timeout_s=90, what=f"{expected_dead} dead letters")
    pipeline.stop_worker()

    letters = read_topic(pipeline.bootstrap, dead_topic, expected=expected_dead + 1, timeout_s=5)
    assert len(letters) == expected_dead, [(m["kind"], m["reason"][:60]) for m in letters]
    assert MARK.encode() not in orjson.dumps(letters)
    assert all(m["raw_sha256"] or m["kind"] != "transcript" for m in letters)
    envelopes = read_topic(
        pipeline.bootstrap, pipeline.settings.topic("transcripts"), expected=10**9, timeout_s=10
    )
    assert envelopes and MARK.encode() not in orjson.dumps(envelopes)

    with pipeline.clickhouse() as ch:
        acc = reference.accounting
        [(stored,)] = ch.query("SELECT count() FROM transcript_lines FINAL")
        [(dead,)] = ch.query("SELECT count() FROM dead_letters FINAL WHERE kind = 'transcript'")
        [(usage_lines,)] = ch.query("SELECT count() FROM transcript_lines FINAL WHERE has_usage")
        assert (stored, dead, usage_lines) == (acc.valid, acc.invalid, acc.usage_lines)
        [(files,)] = ch.query(
            "SELECT groupUniqArray(source_file) FROM transcript_lines "
            "WHERE project = '-home-hostile'"
        )
        assert sorted(Path(f).name for f in files) == ["hostile.jsonl", "huge.jsonl"]
        [(too_long, hashed)] = ch.query(
            "SELECT countIf(reason LIKE 'line longer than%'), countIf(length(raw_sha256) = 64) "
            "FROM dead_letters FINAL WHERE kind = 'transcript'"
        )
        assert too_long == 1 and hashed == dead

        tables = [
            name
            for (name,) in ch.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
            )
        ]
        assert {"transcript_lines", "dead_letters", "events"} <= set(tables)
        holding = {}
        for table in tables:
            [(hits,)] = ch.query(
                f"SELECT countIf(position(formatRow('TSV', *), '{MARK}') > 0) FROM `{table}`"
            )
            if hits:
                holding[table] = hits
        assert holding == {}
