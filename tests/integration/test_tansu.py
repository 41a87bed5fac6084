"""The embedded broker: process lifecycle, consumer groups, topic creation, and the Tansu
end-offset quirk with its workaround.

Lifecycle and quirk tests start their own Tansu; the group and topic tests run on whatever broker
``kafka_bootstrap`` gives (Kafka or Tansu) since they state plain Kafka behaviour.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient

from ingestor.errors import ConfigError, LocalBrokerError
from ingestor.kafka.topics import create_topics, load_topic_defs
from ingestor.local.compat import claim_group, delete_group, end_offsets, patch_faust_for_tansu
from ingestor.local.tansu import TansuBroker, tansu_binary
from ingestor.settings import Settings

pytestmark = pytest.mark.integration

# Tansu's first join of a group waits session_timeout/2; 6 s is Kafka's minimum.
GROUP_OPTS: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
}


def _tansu_missing() -> str | None:
    try:
        tansu_binary()
    except ConfigError as exc:
        return str(exc)
    return None


needs_tansu = pytest.mark.skipif(_tansu_missing() is not None, reason=str(_tansu_missing()))


@pytest.fixture(scope="module")
def tansu() -> Iterator[TansuBroker]:
    try:
        with TansuBroker() as broker:
            yield broker
    except ConfigError as exc:
        pytest.skip(f"no Tansu binary: {exc}")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until_dead(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_topic(bootstrap: str, partitions: int = 1) -> str:
    name = unique("t")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def consume(consumer: AIOKafkaConsumer, n: int, within_s: float = 30.0) -> list[Any]:
    """The next ``n`` records, or fewer if the deadline passes (the caller asserts)."""
    records: list[Any] = []
    deadline = time.monotonic() + within_s
    while len(records) < n and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=500, max_records=n - len(records))
        for part in batch.values():
            records.extend(part)
    return records


# --------------------------------------------------------------------------- lifecycle


@needs_tansu
def test_start_answers_and_stop_leaves_no_process(tmp_path: Path) -> None:
    with TansuBroker(data_dir=tmp_path) as broker:
        pid = broker.pid
        assert pid is not None and alive(pid)
        host, port = broker.bootstrap.split(":")
        assert host == "127.0.0.1" and int(port) > 0

    assert not broker.running
    assert wait_until_dead(pid)
    assert "listening on" in (tmp_path / "tansu.log").read_text()
    broker.stop()  # idempotent
    with pytest.raises(LocalBrokerError):
        _ = broker.bootstrap


@needs_tansu
def test_async_context_manager() -> None:
    async def run() -> int | None:
        async with TansuBroker() as broker:
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            await producer.stop()
            return broker.pid

    pid = asyncio.run(run())
    assert pid is not None and wait_until_dead(pid)


@needs_tansu
def test_broker_dies_with_its_parent() -> None:
    script = (
        "import sys, time\n"
        "from ingestor.local.tansu import TansuBroker\n"
        "b = TansuBroker(); b.start()\n"
        "print(b.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert alive(pid)
        parent.send_signal(signal.SIGKILL)  # no cleanup code runs: only the kernel can help
        parent.wait()
        assert wait_until_dead(pid)
    finally:
        parent.kill()
        parent.wait()


def test_start_failure_reports_the_process_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'boom: cannot bind' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("INGESTOR_TANSU_BIN", str(fake))

    with pytest.raises(LocalBrokerError, match=r"status 3(.|\n)*boom: cannot bind"):
        TansuBroker().start()


def test_a_broker_that_never_answers_is_stopped(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'starting'\nexec sleep 60\n")
    fake.chmod(0o755)
    broker = TansuBroker(fake, startup_timeout_s=0.5)

    with pytest.raises(LocalBrokerError, match=r"did not answer(.|\n)*starting"):
        broker.start()
    assert not broker.running


def test_missing_binary_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not executable"):
        tansu_binary(tmp_path / "nope")
    with pytest.raises(ConfigError):
        TansuBroker(tmp_path / "nope").start()


# --------------------------------------------------------------------------- plain Kafka


def test_group_resumes_after_commit(kafka_bootstrap: str) -> None:
    async def run() -> None:
        topic = await new_topic(kafka_bootstrap)
        tp = TopicPartition(topic, 0)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, b"%d" % i, key=b"k", partition=0)
        finally:
            await producer.stop()

        group = unique("g")
        first = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group, **GROUP_OPTS
        )
        await first.start()
        try:
            got = await consume(first, 10)
            assert [r.value for r in got] == [b"%d" % i for i in range(10)]
            await first.commit({tp: 6})  # processed 0..5 only
        finally:
            await first.stop()

        second = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group, **GROUP_OPTS
        )
        await second.start()
        try:
            rest = await consume(second, 4)
            assert [r.offset for r in rest] == [6, 7, 8, 9]
            assert await second.committed(tp) == 6
        finally:
            await second.stop()

        probe = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
        await probe.start()
        try:
            await delete_group(probe._client, group)
            assert await probe.committed(tp) is None
        finally:
            await probe.stop()

    asyncio.run(run())


def test_create_topics_is_idempotent(kafka_bootstrap: str) -> None:
    settings = Settings(_env_file=None, topic_prefix=unique("it") + ".", topic_partitions=2)
    expected = [d.name for d in load_topic_defs(settings)]

    created = asyncio.run(create_topics(settings, kafka_bootstrap))
    again = asyncio.run(create_topics(settings, kafka_bootstrap))

    assert created == expected
    assert again == []

    async def describe() -> list[Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return list(await admin.describe_topics(expected))
        finally:
            await admin.close()

    assert sorted(len(t["partitions"]) for t in asyncio.run(describe())) == [2, 2, 2, 2]


# --------------------------------------------------------------------------- the quirk


async def produce_batches(bootstrap: str, topic: str, sizes: list[int]) -> None:
    """Each size becomes exactly one record batch on partition 0."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for size in sizes:
            batch = producer.create_batch()
            for i in range(size):
                batch.append(key=b"k", value=b"%d" % i, timestamp=None)
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


def test_end_offsets_quirk_and_workaround(tansu: TansuBroker) -> None:
    async def run() -> None:
        topic = await new_topic(tansu.bootstrap, partitions=2)
        await produce_batches(tansu.bootstrap, topic, [5, 3])  # offsets 0-4, then 5-7
        full, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer = AIOKafkaConsumer(bootstrap_servers=tansu.bootstrap)
        await consumer.start()
        try:
            plain = await consumer.end_offsets([full, empty])
            fixed = await end_offsets(consumer, [full, empty])
        finally:
            await consumer.stop()
        # Tansu: ListOffsets(latest) = the last batch's first offset + 1 (Kafka would say 8).
        assert plain == {full: 6, empty: 0}
        assert fixed == {full: 8, empty: 0}

    asyncio.run(run())


def test_a_claimed_group_is_joined_at_once(tansu: TansuBroker) -> None:
    """Tansu holds a JoinGroup that forms a group for whole seconds while half the group's
    session timeout has not passed; ``claim_group`` forms it with 1 ms first. The hold is a
    sleep of at least a second in the broker, so the claimed join's bound is not a speed test.
    The claim leaves no member behind: the one consumer gets every partition, and keeps them
    across its heartbeats."""

    async def join(topic: str, group: str) -> tuple[float, set[int]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=tansu.bootstrap,
            group_id=group,
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        )
        started = time.monotonic()
        await consumer.start()
        try:
            while not consumer.assignment():
                await asyncio.sleep(0.005)
            took = time.monotonic() - started
            await asyncio.sleep(1.0)  # three heartbeats: nobody evicts it
            return took, {tp.partition for tp in consumer.assignment()}
        finally:
            await consumer.stop()

    async def run() -> None:
        topic = await new_topic(tansu.bootstrap, partitions=3)
        plain, plain_parts = await join(topic, unique("g"))
        group = unique("g")
        client = AIOKafkaClient(bootstrap_servers=tansu.bootstrap)
        await client.bootstrap()
        try:
            await claim_group(client, group, "roundrobin")  # aiokafka's default assignor
        finally:
            await client.close()
        claimed, claimed_parts = await join(topic, group)
        again, again_parts = await join(topic, group)  # a restarted member: at once, too
        assert plain >= 1.0  # the quirk
        assert claimed < 1.0 and again < 1.0
        assert plain_parts == claimed_parts == again_parts == {0, 1, 2}

    asyncio.run(run())


def test_faust_highwaters_use_the_workaround(tansu: TansuBroker) -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from faust.types import TP

    patch_faust_for_tansu()
    patched = AIOKafkaConsumerThread._highwaters
    patch_faust_for_tansu()
    assert AIOKafkaConsumerThread._highwaters is patched  # idempotent

    async def run() -> Any:
        topic = await new_topic(tansu.bootstrap)
        await produce_batches(tansu.bootstrap, topic, [4, 4])
        consumer = AIOKafkaConsumer(bootstrap_servers=tansu.bootstrap)
        await consumer.start()
        try:
            # Only the attributes _highwaters touches: the real thread needs a whole Faust app.
            thread = SimpleNamespace(
                consumer=SimpleNamespace(in_transaction=False),
                _ensure_consumer=lambda: consumer,
            )
            tp = TP(topic, 0)
            return tp, await AIOKafkaConsumerThread._highwaters(thread, [tp])  # type: ignore[arg-type]
        finally:
            await consumer.stop()

    tp, highwaters = asyncio.run(run())
    assert highwaters == {tp: 8}
    assert type(next(iter(highwaters))) is TP  # Faust's own keys come back


@needs_tansu
def test_a_record_sent_before_its_topic_exists_is_acknowledged_and_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Why TansuBroker.restart() moves to a new port: a client still connected to the old
    # address (an SDK retrying) would reach the new, empty broker before `up` re-creates the
    # topics, and Tansu 0.6.0 acknowledges such a record and never returns it.
    from ingestor.local import tansu as tansu_module

    settings = Settings(topic_prefix=f"early{uuid.uuid4().hex[:6]}.")
    topic = settings.topic("events")
    port = tansu_module._free_port("127.0.0.1")
    monkeypatch.setattr(tansu_module, "_free_port", lambda host: port)

    async def read(bootstrap: str) -> list[bytes]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            batches = await consumer.getmany(timeout_ms=2000)
            return [r.value for records in batches.values() for r in records if r.value]
        finally:
            await consumer.stop()

    with TansuBroker() as broker:
        bootstrap = broker.bootstrap

        async def across_a_restart() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            try:
                await create_topics(settings, bootstrap)
                await producer.send_and_wait(topic, b"first broker", partition=0)
                # The broker's memory goes; the producer keeps its connection's metadata.
                broker.stop()
                broker.start()  # in this thread: the broker dies with the thread that forked it
                assert broker.bootstrap == bootstrap
                sent = await producer.send_and_wait(topic, b"no topic yet", partition=0)
                assert sent.offset == 0  # acknowledged
            finally:
                await producer.stop()
            await create_topics(settings, bootstrap)

        asyncio.run(across_a_restart())
        assert asyncio.run(read(bootstrap)) == []  # acknowledged, never fetched
        # The workaround: a restarted broker is on an address nobody knows yet.
        monkeypatch.undo()
        broker.restart()
        assert broker.bootstrap != bootstrap
