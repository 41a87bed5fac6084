from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from watch_helpers import FakeSender, jl, usage_line

from ingestor.errors import BrokerError
from ingestor.producer import Checkpoint, Watcher
from ingestor.producer.checkpoint import default_checkpoint_path
from ingestor.settings import Settings


def write(path: Path, *objs: Any, mode: str = "wb") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode) as handle:
        handle.write(jl(*objs))


def make(
    tmp_path: Path, projects: Path, sender: FakeSender, **settings: Any
) -> tuple[Watcher, Checkpoint]:
    conf = Settings(data_dir=tmp_path / "data", **settings)
    checkpoint = Checkpoint.load(default_checkpoint_path(conf))
    return Watcher(conf, [projects], sender, checkpoint), checkpoint


def once(watcher: Watcher) -> int:
    return asyncio.run(watcher.run_once())


def ts(day: int) -> str:
    return f"2025-01-{day:02d}T00:00:00Z"


def test_sends_every_line_once_keyed_by_project(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    main = projects / "-r1" / "s1.jsonl"
    sub = projects / "-r1" / "s1" / "subagents" / "agent-a.jsonl"
    other = projects / "-r2" / "s2.jsonl"
    write(main, usage_line(1, ts=ts(1)), {"type": "summary"}, usage_line(2, ts=ts(2)))
    write(sub, usage_line(3, ts=ts(3)))
    write(other, b"not json", usage_line(4, ts=ts(4)))
    watcher, checkpoint = make(tmp_path, projects, sender)

    assert once(watcher) == 6
    assert once(watcher) == 0  # nothing new: nothing re-sent

    assert {t for t, _, _ in sender.sent} == {"ingestor.transcripts"}
    keys = {
        env.source.file: key
        for (_, key, _), env in zip(sender.sent, sender.envelopes(), strict=True)
        if env.source is not None
    }
    assert keys == {str(main): b"-r1", str(sub): b"-r1", str(other): b"-r2"}
    sources = {env.source for env in sender.envelopes()}
    assert {(s.project, s.generation, s.first_ts) for s in sources if s} == {
        ("-r1", 0, ts(1)),
        ("-r1", 0, ts(3)),
        ("-r2", 0, ts(4)),
    }
    assert b"SECRET" not in b"".join(value for _, _, value in sender.sent)
    bad = [rec for _, _, rec in sender.records() if "error" in rec]
    assert [(b["offset"], b["raw"]) for b in bad] == [(0, "not json")]
    for path in (main, sub, other):
        position = checkpoint.get(str(path))
        assert position is not None and position.offset == path.stat().st_size
    assert Checkpoint.load(checkpoint.path).get(str(main)) == checkpoint.get(str(main))  # type: ignore[arg-type]
    stats = watcher.stats
    assert (stats.files, stats.lines_read, stats.bad_lines) == (3, 6, 1)
    assert stats.bytes_read == sum(p.stat().st_size for p in (main, sub, other))
    assert stats.envelopes_sent == len(sender.sent) == 3


def test_envelopes_respect_record_and_byte_limits(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    path = projects / "-r" / "s.jsonl"
    write(path, *[usage_line(n, ts=ts(1)) for n in range(25)])
    watcher, _ = make(tmp_path, projects, sender, envelope_max_records=4, envelope_max_bytes=1500)
    assert once(watcher) == 25
    assert all(len(v) <= 1500 for _, _, v in sender.sent)
    assert all(len(env.records) <= 4 for env in sender.envelopes())
    assert [rec["line"]["uuid"] for _, _, rec in sender.records()] == [f"u{n}" for n in range(25)]


def test_backfill_reads_files_in_ccusage_order_each_file_whole(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    # Path order and creation order both disagree with timestamp order.
    files = {
        "a-late": [usage_line(1, ts=ts(9)), usage_line(2, ts=ts(10))],
        "b-untimed": [{"type": "summary"}],
        "c-early": [{"type": "summary"}, usage_line(3, ts=ts(1)), usage_line(4, ts=ts(20))],
        "d-middle": [usage_line(5, ts=ts(5))],
    }
    for name, lines in files.items():
        write(projects / "-r" / f"{name}.jsonl", *lines)
    watcher, _ = make(tmp_path, projects, sender, envelope_max_records=1)
    once(watcher)
    order = [Path(f).stem for f, _, _ in sender.records()]
    assert order == ["c-early"] * 3 + ["d-middle", "a-late", "a-late", "b-untimed"]


def test_a_failed_send_keeps_the_position_and_a_restart_resends(
    tmp_path: Path, projects: Path
) -> None:
    path = projects / "-r" / "s.jsonl"
    write(path, *[usage_line(n) for n in range(5)])
    failing = FakeSender(fail_at=2)
    watcher, checkpoint = make(tmp_path, projects, failing, envelope_max_records=2)
    with pytest.raises(BrokerError):
        once(watcher)
    acked = [rec["offset"] for _, _, rec in failing.records()]
    assert len(acked) == 4
    saved = Checkpoint.load(checkpoint.path).get(str(path))  # type: ignore[arg-type]
    assert saved is not None
    fifth = path.read_bytes().splitlines(keepends=True)
    assert saved.offset == sum(len(line) for line in fifth[:4])  # just past the acked lines

    resumed = FakeSender()
    watcher2, _ = make(tmp_path, projects, resumed)
    assert once(watcher2) == 1
    assert [rec["offset"] for _, _, rec in resumed.records()] == [saved.offset]


def test_appends_partial_lines_truncation_and_replacement(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    path = projects / "-r" / "s.jsonl"
    write(path, usage_line(1, ts=ts(1)))
    watcher, checkpoint = make(tmp_path, projects, sender)
    assert once(watcher) == 1

    with path.open("ab") as handle:
        handle.write(jl(usage_line(2)) + b'{"type": "user", "timesta')
    assert once(watcher) == 1  # the partial line waits
    with path.open("ab") as handle:
        handle.write(b'mp": "2025-01-03T00:00:00Z"}\n\n')
    assert once(watcher) == 1
    position = checkpoint.get(str(path))
    assert position is not None and position.offset == path.stat().st_size

    path.write_bytes(jl(usage_line(9, ts=ts(9))))  # truncated and rewritten in place
    assert once(watcher) == 1
    replacement = path.with_suffix(".tmp")
    replacement.write_bytes(jl(usage_line(10, ts=ts(10)), usage_line(11)))
    os.replace(replacement, path)
    assert once(watcher) == 2

    seen = [(gen, rec["offset"], rec["line"].get("uuid")) for _, gen, rec in sender.records()]
    assert [s[0] for s in seen] == [0, 0, 0, 1, 2, 2]
    assert [s[1] for s in seen][3:5] == [0, 0]
    assert [s[2] for s in seen] == ["u1", "u2", None, "u9", "u10", "u11"]
    firsts = [env.source.first_ts for env in sender.envelopes() if env.source]
    assert firsts == [ts(1), ts(1), ts(1), ts(9), ts(10)]


def test_override_resends_what_clickhouse_does_not_hold(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    kept = projects / "-r" / "kept.jsonl"
    lost = projects / "-r" / "lost.jsonl"
    write(kept, usage_line(1, ts=ts(1)), usage_line(2))
    write(lost, usage_line(3, ts=ts(2)))
    watcher, checkpoint = make(tmp_path, projects, sender)
    once(watcher)
    first_line = len(jl(usage_line(1, ts=ts(1))))

    checkpoint.override({(str(kept), 0): first_line})  # the broker lost the rest
    checkpoint.save()
    again = FakeSender()
    watcher2, _ = make(tmp_path, projects, again)
    assert once(watcher2) == 2
    assert [(Path(f).name, rec["offset"]) for f, _, rec in again.records()] == [
        ("kept.jsonl", first_line),
        ("lost.jsonl", 0),
    ]
    assert {env.source.first_ts for env in again.envelopes() if env.source} == {ts(1), ts(2)}


def test_run_follows_appends_until_stopped(tmp_path: Path, projects: Path) -> None:
    path = projects / "-r" / "s.jsonl"
    write(path, usage_line(1, ts=ts(1)))
    stop = asyncio.Event()

    def on_send(count: int) -> None:
        if count == 1:  # a line appended while the watcher runs
            write(path, usage_line(2), mode="ab")
        else:
            stop.set()

    sender = FakeSender(on_send=on_send)
    watcher, _ = make(tmp_path, projects, sender, watch_poll_interval_s=0.01)
    asyncio.run(asyncio.wait_for(watcher.run(stop), timeout=30))
    assert [rec["line"]["uuid"] for _, _, rec in sender.records()] == ["u1", "u2"]


def test_run_survives_a_broker_outage(tmp_path: Path, projects: Path) -> None:
    path = projects / "-r" / "s.jsonl"
    write(path, usage_line(1, ts=ts(1)))
    stop = asyncio.Event()
    attempts = 0

    class Flaky(FakeSender):
        async def send(self, topic: str, key: bytes, value: bytes) -> None:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise BrokerError("not yet")
            await super().send(topic, key, value)
            stop.set()

    sender = Flaky()
    watcher, _ = make(tmp_path, projects, sender, watch_poll_interval_s=0.01)
    asyncio.run(asyncio.wait_for(watcher.run(stop), timeout=30))
    assert attempts == 2 and len(sender.records()) == 1
    assert orjson.loads(sender.sent[0][2])["source"]["file"] == str(path)
