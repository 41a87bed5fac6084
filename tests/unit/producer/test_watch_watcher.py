from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import orjson
import pytest
from watch_helpers import FakeSender, jl, usage_line

from ingestor.errors import BrokerError
from ingestor.producer import Checkpoint, Watcher
from ingestor.producer import tail as tail_module
from ingestor.producer.checkpoint import default_checkpoint_path
from ingestor.settings import Settings


def write(path: Path, *objs: Any, mode: str = "wb") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode) as handle:
        handle.write(jl(*objs))


def make(
    tmp_path: Path, projects: Path, sender: FakeSender, **settings: Any
) -> tuple[Watcher, Checkpoint]:
    # One message an envelope unless a test bundles: what most of these tests count.
    conf = Settings(data_dir=tmp_path / "data", **{"envelope_bundle_max": 1, **settings})
    checkpoint = Checkpoint.load(default_checkpoint_path(conf))
    return Watcher(conf, [projects], sender, checkpoint), checkpoint


def once(watcher: Watcher) -> int:
    return asyncio.run(watcher.run_once())


def ts(day: int) -> str:
    return f"2025-01-{day:02d}T00:00:00Z"


def deny_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse a file without read permission even to root (tests may run as root)."""
    real = tail_module.open_regular

    def open_regular(path: str) -> int:
        if not os.stat(path).st_mode & 0o444:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(tail_module, "open_regular", open_regular)


def test_sends_every_line_once_keyed_by_the_dedup_scope(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    main = projects / "-r1" / "s1.jsonl"
    sub = projects / "-r1" / "s1" / "subagents" / "agent-a.jsonl"
    other = projects / "-r2" / "s2.jsonl"
    write(main, usage_line(1, ts=ts(1)), {"type": "summary"}, usage_line(2, ts=ts(2)))
    write(sub, usage_line(3, ts=ts(3)))
    write(other, b"not json", usage_line(4, ts=ts(4)))
    watcher, checkpoint = make(tmp_path, projects, sender, dedup_scope="host-a")

    assert once(watcher) == 6
    assert once(watcher) == 0  # nothing new: nothing re-sent

    assert {t for t, _, _ in sender.sent} == {"ingestor.transcripts"}
    assert {key for _, key, _ in sender.sent} == {b"host-a"}  # one scope: one partition
    sources = {env.source for env in sender.envelopes()}
    assert {(s.file, s.project, s.generation, s.first_ts, s.scope) for s in sources if s} == {
        (str(main), "-r1", 0, ts(1), "host-a"),
        (str(sub), "-r1", 0, ts(3), "host-a"),
        (str(other), "-r2", 0, ts(4), "host-a"),
    }
    assert b"SECRET" not in b"".join(value for _, _, value in sender.sent)
    bad = [rec for _, _, rec in sender.records() if "error" in rec]
    assert [(b["offset"], b["length"], "raw" in b) for b in bad] == [(0, 9, False)]
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
    # ccusage 20 reads by path, whatever the timestamps say.
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
    assert order == ["a-late", "a-late", "b-untimed"] + ["c-early"] * 3 + ["d-middle"]


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
    assert once(watcher) == 2  # the completed line, and the blank one (a bad line)
    position = checkpoint.get(str(path))
    assert position is not None and position.offset == path.stat().st_size

    path.write_bytes(jl(usage_line(9, ts=ts(9))))  # truncated and rewritten in place
    assert once(watcher) == 1
    replacement = path.with_suffix(".tmp")
    replacement.write_bytes(jl(usage_line(10, ts=ts(10)), usage_line(11)))
    os.replace(replacement, path)
    assert once(watcher) == 2

    seen = [
        (gen, rec["offset"], rec.get("line", {}).get("uuid")) for _, gen, rec in sender.records()
    ]
    assert [s[0] for s in seen] == [0, 0, 0, 0, 1, 2, 2]
    assert [s[1] for s in seen][4:6] == [0, 0]
    assert [s[2] for s in seen] == ["u1", "u2", None, None, "u9", "u10", "u11"]
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
        async def send(self, topic: str, key: bytes, value: bytes) -> Awaitable[None]:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise BrokerError("not yet")
            stop.set()
            return await super().send(topic, key, value)

    sender = Flaky()
    watcher, _ = make(tmp_path, projects, sender, watch_poll_interval_s=0.01)
    asyncio.run(asyncio.wait_for(watcher.run(stop), timeout=30))
    assert attempts == 2 and len(sender.records()) == 1
    assert orjson.loads(sender.sent[0][2])["source"]["file"] == str(path)


def line_ends(path: Path) -> list[int]:
    ends, total = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        total += len(line)
        ends.append(total)
    return ends


def test_many_envelopes_in_flight_are_acknowledged_in_order(tmp_path: Path, projects: Path) -> None:
    first, second = projects / "-a" / "one.jsonl", projects / "-b" / "two.jsonl"
    write(first, *[usage_line(n, ts=ts(1)) for n in range(30)])
    write(second, *[usage_line(n, ts=ts(2)) for n in range(30, 50)])
    slow = FakeSender(latency=0.002)
    conf = Settings(data_dir=tmp_path / "data", envelope_max_records=1, envelope_bundle_max=1)
    checkpoint = Checkpoint(tmp_path / "cp.json")
    watcher = Watcher(conf, [projects], slow, checkpoint, max_in_flight=16)

    assert once(watcher) == 50
    assert slow.max_in_flight == 16  # pipelined, up to the window
    assert [rec["line"]["uuid"] for _, _, rec in slow.records()] == [f"u{n}" for n in range(50)]
    for path in (first, second):
        position = checkpoint.get(str(path))
        assert position is not None and position.offset == path.stat().st_size
    assert (watcher.stats.envelopes_sent, watcher.stats.lines_read) == (50, 50)


def test_the_window_bounds_envelopes_and_bytes_in_flight(tmp_path: Path, projects: Path) -> None:
    path = projects / "-r" / "s.jsonl"
    write(path, *[usage_line(n, ts=ts(1)) for n in range(40)])
    conf = Settings(data_dir=tmp_path / "data", envelope_max_records=1, envelope_bundle_max=1)

    by_count = FakeSender(latency=0.001)
    watcher = Watcher(conf, [projects], by_count, Checkpoint(), max_in_flight=3)
    assert once(watcher) == 40
    assert by_count.max_in_flight == 3

    by_bytes = FakeSender(latency=0.001)
    size = max(len(value) for _, _, value in by_count.sent)
    watcher = Watcher(conf, [projects], by_bytes, Checkpoint(), max_in_flight_bytes=size * 5 // 2)
    assert once(watcher) == 40
    assert by_bytes.max_in_flight == 2

    alone = FakeSender(latency=0.001)  # an envelope larger than the bound still goes, alone
    watcher = Watcher(conf, [projects], alone, Checkpoint(), max_in_flight_bytes=size // 2)
    assert once(watcher) == 40
    assert alone.max_in_flight == 1
    assert [rec["line"]["uuid"] for _, _, rec in alone.records()] == [f"u{n}" for n in range(40)]


@pytest.mark.parametrize("fail", [{5}, set(range(5, 100))], ids=["one-lost", "broker-down"])
def test_a_failure_mid_window_keeps_the_last_acknowledged_position(
    tmp_path: Path, projects: Path, fail: set[int]
) -> None:
    first, second = projects / "-a" / "one.jsonl", projects / "-b" / "two.jsonl"
    write(first, *[usage_line(n, ts=ts(1)) for n in range(8)])
    write(second, *[usage_line(n, ts=ts(2)) for n in range(8, 12)])
    lossy = FakeSender(latency=0.002, fail=frozenset(fail))
    conf = Settings(data_dir=tmp_path / "data", envelope_max_records=1, envelope_bundle_max=1)
    checkpoint = Checkpoint(tmp_path / "cp.json")
    watcher = Watcher(conf, [projects], lossy, checkpoint, max_in_flight=8)

    with pytest.raises(BrokerError):
        once(watcher)
    assert lossy.max_in_flight == 8 and lossy.attempts >= 8  # the failure was mid-window
    # Envelopes 0-4 were acknowledged in order; 5 was not, so nothing after it counts, even the
    # ones the broker did store (6, 7, ... in the one-lost case).
    saved = Checkpoint.load(tmp_path / "cp.json")
    position = saved.get(str(first))
    assert position is not None and position.offset == line_ends(first)[4]
    second_position = saved.get(str(second))
    assert second_position is None or second_position.offset == 0
    assert (watcher.stats.envelopes_sent, watcher.stats.lines_read) == (5, 5)
    assert watcher.stats.bytes_read == line_ends(first)[4]
    stored = [rec["line"]["uuid"] for _, _, rec in lossy.records()]
    assert stored[:5] == [f"u{n}" for n in range(5)] and "u5" not in stored
    if fail == {5}:
        assert "u6" in stored  # stored behind the lost one: the next pass sends it again

    # The next pass (same watcher, as ``run`` retries) resends exactly the rest.
    lossy.fail, lossy.sent = frozenset(), []
    assert once(watcher) == 7
    resent = lossy.records()
    assert [rec["line"]["uuid"] for _, _, rec in resent] == [f"u{n}" for n in range(5, 12)]
    assert resent[0][2]["offset"] == line_ends(first)[4]
    for path in (first, second):
        position = checkpoint.get(str(path))
        assert position is not None and position.offset == path.stat().st_size
    assert (watcher.stats.envelopes_sent, watcher.stats.lines_read) == (12, 12)


def test_a_send_that_cannot_queue_keeps_what_was_acknowledged(
    tmp_path: Path, projects: Path
) -> None:
    path = projects / "-r" / "s.jsonl"
    write(path, *[usage_line(n, ts=ts(1)) for n in range(10)])

    class Refusing(FakeSender):
        async def send(self, topic: str, key: bytes, value: bytes) -> Awaitable[None]:
            if self.attempts == 6:
                raise BrokerError("queue full")
            return await super().send(topic, key, value)

    refusing = Refusing(latency=0.002)
    conf = Settings(data_dir=tmp_path / "data", envelope_max_records=1, envelope_bundle_max=1)
    checkpoint = Checkpoint(tmp_path / "cp.json")
    watcher = Watcher(conf, [projects], refusing, checkpoint)
    with pytest.raises(BrokerError, match="queue full"):
        once(watcher)
    # The six envelopes already in flight were still acknowledged, in order, and count.
    position = Checkpoint.load(tmp_path / "cp.json").get(str(path))
    assert position is not None and position.offset == line_ends(path)[5]
    assert watcher.stats.lines_read == 6

    restarted = FakeSender()
    watcher2 = Watcher(conf, [projects], restarted, Checkpoint.load(tmp_path / "cp.json"))
    assert once(watcher2) == 4
    assert [rec["line"]["uuid"] for _, _, rec in restarted.records()] == [
        f"u{n}" for n in range(6, 10)
    ]


def test_an_unreadable_file_is_skipped_with_one_warning_and_retried(
    tmp_path: Path,
    projects: Path,
    sender: FakeSender,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deny_unreadable(monkeypatch)
    a, b, c = (projects / "-r1" / f"{name}.jsonl" for name in "abc")
    for index, path in enumerate((a, b, c), 1):
        write(path, usage_line(index, ts=ts(index)))
    b.chmod(0)
    try:
        watcher, checkpoint = make(tmp_path, projects, sender)
        with caplog.at_level("WARNING", logger="ingestor.producer.watch"):
            assert once(watcher) == 2  # a and c: the rest of the tree goes on
            write(b, usage_line(4, ts=ts(4)), mode="ab")  # b changes: tried again, still no luck
            assert once(watcher) == 0
            assert once(watcher) == 0
        warnings = [r for r in caplog.records if str(b) in r.getMessage()]
        assert len(warnings) == 1 and "cannot be read" in warnings[0].getMessage()
        assert checkpoint.get(str(b)) is None
    finally:
        b.chmod(0o644)
    assert once(watcher) == 2  # readable again: read from its start
    offsets = sorted(rec["offset"] for _, _, rec in sender.records())
    assert offsets == [0, 0, 0, b.stat().st_size // 2]


def test_symlinked_files_and_directories_are_not_followed(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.jsonl", usage_line(1, ts=ts(1)))
    (outside / "passwd").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    write(projects / "-r1" / "real.jsonl", usage_line(2, ts=ts(2)))
    (projects / "-r1" / "passwd.jsonl").symlink_to(outside / "passwd")
    (projects / "-r1" / "link.jsonl").symlink_to(outside / "secret.jsonl")
    (projects / "-r2").symlink_to(outside, target_is_directory=True)
    os.mkfifo(projects / "-r1" / "fifo.jsonl")
    watcher, _ = make(tmp_path, projects, sender)
    assert once(watcher) == 1
    assert {env.source.file for env in sender.envelopes() if env.source} == {
        str(projects / "-r1" / "real.jsonl")
    }
    assert b"root:" not in b"".join(value for _, _, value in sender.sent)


def test_deleted_and_emptied_files_announce_an_empty_generation_once(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    gone = projects / "-r" / "gone.jsonl"
    emptied = projects / "-r" / "emptied.jsonl"
    write(gone, usage_line(1, ts=ts(1)))
    write(emptied, usage_line(2, ts=ts(2)))
    watcher, checkpoint = make(tmp_path, projects, sender)
    assert once(watcher) == 2

    gone.unlink()
    emptied.write_bytes(b"")  # truncated to nothing: no line to carry the new generation
    once(watcher)
    once(watcher)  # nothing new: each announcement is sent once
    empty = [
        (Path(e.source.file).name, e.source.generation)
        for e in sender.envelopes()
        if e.source and e.empty
    ]
    assert sorted(empty) == [("emptied.jsonl", 1), ("gone.jsonl", 1)]
    tomb = checkpoint.get(str(gone))
    assert tomb is not None and tomb.gone and tomb.generation == 1

    # A restart finds the same checkpoint (saved): nothing is announced again ...
    again = FakeSender()
    watcher2, checkpoint2 = make(tmp_path, projects, again)
    once(watcher2)
    assert again.envelopes() == []
    # ... unless ClickHouse does not hold the tombstone (the broker lost it): sent anew.
    checkpoint2.override({(str(emptied), 1): 0})
    once(watcher2)
    assert [
        (Path(e.source.file).name, e.source.generation) for e in again.envelopes() if e.source
    ] == [("gone.jsonl", 2)]

    write(gone, usage_line(3, ts=ts(3)))  # it comes back: read as the tombstone generation
    once(watcher2)
    assert [(g, rec["line"]["uuid"]) for f, g, rec in again.records() if f == str(gone)] == [
        (2, "u3")
    ]
    back = checkpoint2.get(str(gone))
    assert back is not None and not back.gone


class _SlowCheckpoint(Checkpoint):
    """A checkpoint whose save takes ``cost`` seconds of the watcher's (fake) clock."""

    def __init__(self, now: list[float], cost: float) -> None:
        super().__init__(None)
        self.now, self.cost, self.saves = now, cost, 0

    def save(self) -> None:
        self.saves += 1
        self.now[0] += self.cost


def test_a_costly_checkpoint_is_saved_less_often_while_following_files(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    """Between passes a save waits ``checkpoint_interval_s`` or 20 times its last cost: one that
    took 0.2 s comes again after 4 s, not after 1 s."""
    now = [0.0]
    checkpoint = _SlowCheckpoint(now, cost=0.2)
    conf = Settings(data_dir=tmp_path / "data", envelope_bundle_max=1)
    watcher = Watcher(conf, [projects], sender, checkpoint, clock=lambda: now[0])
    write(projects / "-r1" / "s1.jsonl", usage_line(1, ts(1)))

    async def passes() -> None:
        await watcher.run_once()  # a pass of its own ends with a save
        assert checkpoint.saves == 1
        for _ in range(3):  # following: 3 passes 1 s apart, none due yet
            now[0] += 1.0
            await watcher.run_once(save=False)
        assert checkpoint.saves == 1
        now[0] += 1.0  # 4.2 s after the save: due
        await watcher.run_once(save=False)
        assert checkpoint.saves == 2

    asyncio.run(passes())


def test_progress_stats_a_file_not_read_yet_once(
    tmp_path: Path, projects: Path, sender: FakeSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backfill's first pass reports its progress each second while most files wait.
    for n in range(3):
        write(projects / "-r1" / f"s{n}.jsonl", usage_line(f"m{n}", ts(n + 1)))
    last = str(projects / "-r1" / "s2.jsonl")
    watcher, _ = make(tmp_path, projects, sender)
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        stats.append(str(path))
        return real_stat(path, *args, **kwargs)

    def report(_n: int) -> None:
        for _ in range(3):
            assert watcher.backlog()[1] > 0

    sender.on_send = report
    monkeypatch.setattr(os, "stat", counting_stat)
    once(watcher)
    monkeypatch.undo()
    assert stats.count(last) == 2  # one for the progress, one when its turn came
    done, total = watcher.backlog()
    assert done == total > 0


def _small_files(projects: Path, count: int, lines: int) -> list[Path]:
    paths = [projects / f"-p{i % 3}" / f"s{i:02d}.jsonl" for i in range(count)]
    for i, path in enumerate(paths):
        write(path, *[usage_line(100 * i + n, ts=ts(1 + i % 9)) for n in range(lines)])
    return paths


def test_small_files_go_in_bundles_every_line_once_in_order(
    tmp_path: Path, projects: Path, sender: FakeSender
) -> None:
    """A pass's envelopes travel up to ``envelope_bundle_max`` a message (wire version 3), in
    file order, and each file's position moves to its end once its bundle is acknowledged."""
    paths = _small_files(projects, 20, 3)
    watcher, checkpoint = make(tmp_path, projects, sender, envelope_bundle_max=8)
    assert once(watcher) == 60
    assert len(sender.sent) == 3  # 8 + 8 + 4 files
    assert [orjson.loads(value)["v"] for _, _, value in sender.sent] == [3, 3, 3]
    assert watcher.stats.messages_sent == 3 and watcher.stats.envelopes_sent == 20
    files = [env.source.file for env in sender.envelopes() if env.source is not None]
    assert files == sorted(str(p) for p in paths)  # ccusage's order, each file once
    assert [rec["offset"] for _, _, rec in sender.records()] == [
        offset for path in sorted(paths) for offset in [0, *line_ends(path)[:-1]]
    ]
    for path in paths:
        saved = checkpoint.get(str(path))
        assert saved is not None and saved.offset == path.stat().st_size


def test_a_failed_bundle_keeps_its_files_positions_and_a_rerun_sends_them_once(
    tmp_path: Path, projects: Path
) -> None:
    """The second bundle's delivery fails: the files of the first keep their acknowledged
    ends, the files of the second (and those never sent) stay where they were; the next run
    sends exactly the lines not acknowledged."""
    paths = sorted(_small_files(projects, 12, 2))
    failing = FakeSender(fail_at=1)
    watcher, checkpoint = make(tmp_path, projects, failing, envelope_bundle_max=4)
    with pytest.raises(BrokerError):
        once(watcher)
    saved = Checkpoint.load(checkpoint.path)
    done = [p for p in paths if (s := saved.get(str(p))) is not None and s.offset > 0]
    assert done == paths[:4]
    assert all(saved.get(str(p)).offset == p.stat().st_size for p in done)  # type: ignore[union-attr]

    resumed = FakeSender()
    again, _ = make(tmp_path, projects, resumed, envelope_bundle_max=4)
    assert once(again) == 16
    first = {(f, rec["offset"]) for f, _, rec in failing.records()}
    second = {(f, rec["offset"]) for f, _, rec in resumed.records()}
    assert not first & second and len(first | second) == 24


def test_a_bundle_stays_within_the_message_bytes(tmp_path: Path, projects: Path) -> None:
    _small_files(projects, 30, 4)
    sender = FakeSender()
    watcher, _ = make(tmp_path, projects, sender, envelope_bundle_max=64, envelope_max_bytes=4096)
    assert once(watcher) == 120
    assert len(sender.sent) > 1
    assert all(len(value) <= 4096 for _, _, value in sender.sent)
    assert len(sender.envelopes()) == 30
