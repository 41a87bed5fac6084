"""Workarounds for Tansu 0.6.0, applied only when ingestor runs its embedded broker.

**End offsets.** Tansu answers ListOffsets(latest) with the *last batch's first offset + 1*, which
is too low whenever that batch holds several records (our producers always batch). The
high-watermark in a Fetch response is right. Faust asks for end offsets (``highwaters``) before
changelog recovery; a low value makes recovery stop early or fail its consistency check
("offset > highwater"). ``fetch_end_offsets`` computes the true end; ``patch_faust_for_tansu``
makes Faust use it. The per-message lag Faust tracks already comes from Fetch and is right.

Two more quirks this module works around, measured on Tansu 0.6.0:

* a Fetch with ``max_wait_ms=0`` returns no partitions at all, so we wait a few milliseconds;
* admin ``list_consumer_group_offsets`` and ``delete_records`` are broken, but a raw DeleteGroups
  request works (``delete_group``);
* a JoinGroup that forms a group is held while the group's session timeout has not half passed,
  in whole-second sleeps (measured: 10 s -> 5.0 s, 3 s -> 2.0 s, 2 s and less -> 1.0 s). The
  group's session timeout is the one the group's *first* JoinGroup gave, kept for the group's
  life (``coordinator/group/administrator.rs``: ``elapsed_ms < session_timeout_ms / 2`` then
  ``sleep(1 s)``). Two workarounds: on Tansu the worker's own session timeout is
  ``TANSU_SESSION_TIMEOUT_S`` unless set (``tansu_session_timeout``; heartbeats come from Faust's
  consumer thread every third of it, so a busy event loop does not starve them), and ``up``
  creates the group before its worker starts (``claim_group``): a JoinGroup of 1 ms, at once
  left, so every join of the worker is answered at once instead of after a second. The broker
  then evicts a member that has been silent for 1 ms *when another member calls*: harmless with
  one member, and ``up``'s broker has one, its worker (a replacement worker's join evicts the
  dead one at once instead of after its session timeout).
* a Fetch that waits for data is not answered as soon as a record arrives: a record sent to an
  idle partition reached the worker 40-770 ms later (about 470 ms typically) under Faust's
  hard-coded ``fetch_max_wait_ms=1500``, and 25-80 ms with 100. On Tansu the worker's
  consumer waits ``TANSU_FETCH_MAX_WAIT_MS`` (``patch_faust_for_tansu``): one line appended to a
  live transcript was stored 0.5 s after it was written instead of 0.9-1.2 s (batch age 0.3 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka import errors as kafka_errors
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.protocol.admin import DeleteGroupsRequest
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from ingestor.errors import BrokerError

__all__ = [
    "FAUST_ASSIGNOR",
    "TANSU_FETCH_MAX_WAIT_MS",
    "TANSU_SESSION_TIMEOUT_S",
    "claim_group",
    "delete_group",
    "end_offsets",
    "fetch_end_offsets",
    "patch_faust_for_tansu",
    "tansu_session_timeout",
]

TP = TypeVar("TP", bound=tuple[str, int])  # aiokafka's or Faust's (topic, partition) tuple

_FETCH_WAITS_MS = (10, 100, 1000)  # Tansu answers a max_wait_ms=0 Fetch with no partitions
_PARTITION_MAX_BYTES = 1 << 20
_READ_UNCOMMITTED = 0


async def end_offsets(consumer: AIOKafkaConsumer, partitions: Iterable[TP]) -> dict[TP, int]:
    """True end offsets (the offset the next record will get) of ``partitions``.

    Correct on Apache Kafka too (the Fetch high-watermark is the end offset there as well), at
    the cost of one Fetch per leader. Raises ``BrokerError`` for a partition error.
    """
    tps = list(partitions)
    try:
        listed = await consumer.end_offsets(tps)
    except kafka_errors.KafkaError as exc:
        raise BrokerError(f"ListOffsets failed: {exc!r}") from exc
    # Keyed by the caller's own tuples (Faust's TP), which equal and hash like aiokafka's.
    return await fetch_end_offsets(consumer._client, {tp: listed[tp] for tp in tps})


async def fetch_end_offsets(client: AIOKafkaClient, listed: Mapping[TP, int]) -> dict[TP, int]:
    """Correct ListOffsets(latest) results ``listed`` using Fetch.

    On Tansu ``listed[tp] - 1`` is the first offset of the partition's last batch, so one Fetch
    there returns that batch and the high-watermark; the answer is the largest of the listed
    offset, the high-watermark and the end of the returned batches. A listed 0 means an empty
    partition on Tansu and Kafka alike and costs no request. Raises ``BrokerError`` for a
    partition error, or for a partition the broker keeps leaving out of its answers.
    """
    result = dict(listed)
    by_node: dict[int, list[TP]] = {}
    for tp, offset in listed.items():
        if offset > 0:
            by_node.setdefault(await _leader(client, tp), []).append(tp)
    for node_id, tps in by_node.items():
        pending = {(tp[0], tp[1]): tp for tp in tps}
        for wait_ms in _FETCH_WAITS_MS:
            positions = [(key, listed[tp] - 1) for key, tp in pending.items()]
            for key, end in (await _fetch(client, node_id, positions, wait_ms)).items():
                if key in pending:
                    answered = pending.pop(key)
                    result[answered] = max(result[answered], end)
            if not pending:
                break
        else:
            raise BrokerError(f"Fetch from node {node_id} left out {sorted(pending)}")
    return result


async def _fetch(
    client: AIOKafkaClient, node_id: int, positions: list[tuple[tuple[str, int], int]], wait_ms: int
) -> dict[tuple[str, int], int]:
    """One Fetch; per answered partition, the larger of its high-watermark and batches' end."""
    topics: dict[str, list[tuple[int, int, int]]] = {}
    for (topic, partition), offset in positions:
        topics.setdefault(topic, []).append((partition, offset, _PARTITION_MAX_BYTES))
    request = FetchRequest(
        wait_ms, 1, _PARTITION_MAX_BYTES, _READ_UNCOMMITTED, list(topics.items())
    )
    try:
        response = await client.send(node_id, request)
    except kafka_errors.KafkaError as exc:
        raise BrokerError(f"Fetch from node {node_id} failed: {exc!r}") from exc
    answers: dict[tuple[str, int], int] = {}
    for topic, partitions in response.topics:
        for partition, error_code, highwater, *rest in partitions:
            if error_code != 0:
                name = kafka_errors.for_code(error_code).__name__
                raise BrokerError(f"Fetch {topic}[{partition}]: {name}")
            answers[(topic, partition)] = max(highwater, _records_end(rest[-1]))
    return answers


def _records_end(data: bytes | None) -> int:
    """The offset after the last complete batch in a Fetch payload, or -1."""
    end = -1
    if data:
        records = MemoryRecords(data)
        while (batch := records.next_batch()) is not None:
            end = max(end, batch.next_offset)
    return end


async def _leader(client: AIOKafkaClient, tp: tuple[str, int]) -> int:
    aiotp = TopicPartition(tp[0], tp[1])
    leader = client.cluster.leader_for_partition(aiotp)
    if leader is None or leader < 0:
        await client._wait_on_metadata(tp[0])
        leader = client.cluster.leader_for_partition(aiotp)
    if leader is None or leader < 0:
        raise BrokerError(f"no leader for {tp[0]}[{tp[1]}]")
    return int(leader)


_PATCHED = "_ingestor_tansu_highwaters"


TANSU_SESSION_TIMEOUT_S = 2.0  # the first join then waits 1 s, Tansu's least
TANSU_FETCH_MAX_WAIT_MS = 100  # an idle fetch's wait: about the latency a record sees


def tansu_session_timeout(configured: float | None) -> float:
    """The consumer group session timeout to use on Tansu: ``configured`` when set."""
    return TANSU_SESSION_TIMEOUT_S if configured is None else configured


def patch_faust_for_tansu() -> None:
    """Make Faust's aiokafka driver compute ``highwaters`` with ``end_offsets``, and its worker
    consumer wait ``TANSU_FETCH_MAX_WAIT_MS`` for data (see the module). Idempotent.

    Call it only when ingestor started its own Tansu broker (``settings.uses_local_broker``),
    before the Faust app starts. Transactional consumers keep Faust's own path.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if getattr(AIOKafkaConsumerThread, _PATCHED, False):
        return
    original = AIOKafkaConsumerThread._highwaters
    create = AIOKafkaConsumerThread._create_worker_consumer

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        if self.consumer.in_transaction:
            return await original(self, partitions)
        return await end_offsets(self._ensure_consumer(), partitions)

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        # Read by the consumer's start(), which builds its fetcher: not started yet here.
        consumer._fetch_max_wait_ms = TANSU_FETCH_MAX_WAIT_MS
        return consumer

    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    setattr(AIOKafkaConsumerThread, _PATCHED, True)


async def delete_group(client: AIOKafkaClient, group_id: str) -> None:
    """Delete a consumer group (with its committed offsets) via a raw DeleteGroups request.

    The group must have no members. A group that does not exist is not an error. Raises
    ``BrokerError`` otherwise.
    """
    try:
        node_id = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        response = await client.send(node_id, DeleteGroupsRequest([group_id]))
    except kafka_errors.KafkaError as exc:
        raise BrokerError(f"DeleteGroups {group_id!r} failed: {exc!r}") from exc
    for name, error_code in response.results:
        if error_code not in (0, kafka_errors.GroupIdNotFound.errno):
            raise BrokerError(
                f"DeleteGroups {name!r}: {kafka_errors.for_code(error_code).__name__}"
            )


GROUP_CLAIM_SESSION_MS = 1  # Tansu sleeps while elapsed < timeout / 2: never, at 1 ms
FAUST_ASSIGNOR = "faust"  # the protocol Faust's consumer offers (its PartitionAssignor's name)
_CONSUMER_PROTOCOL = "consumer"


async def claim_group(client: AIOKafkaClient, group_id: str, protocol: str) -> None:
    """Form ``group_id`` on a Tansu broker with a 1 ms session timeout, so that its members'
    JoinGroups are answered at once (see the module). ``protocol`` is the assignor the members
    use (Faust's: ``"faust"``); a member offering no such protocol could not join.

    Call it only while the group has no member: a JoinGroup without a member id, answered
    MemberIdRequired, and a LeaveGroup of the member id it was given, so no member is left.
    Raises ``BrokerError`` when the broker answers otherwise.
    """
    try:
        node_id = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        join = JoinGroupRequest(
            group_id,
            GROUP_CLAIM_SESSION_MS,
            GROUP_CLAIM_SESSION_MS,
            JoinGroupRequest.UNKNOWN_MEMBER_ID,
            None,  # no static membership
            _CONSUMER_PROTOCOL,
            [(protocol, b"")],
        )
        joined = await client.send(node_id, join)
        if joined.error_code != kafka_errors.MemberIdRequired.errno:
            name = kafka_errors.for_code(joined.error_code).__name__
            raise BrokerError(f"JoinGroup {group_id!r} to claim it: {name}")
        left = await client.send(node_id, LeaveGroupRequest(group_id, joined.member_id))
    except kafka_errors.KafkaError as exc:
        raise BrokerError(f"claiming group {group_id!r} failed: {exc!r}") from exc
    if left.error_code != 0:
        name = kafka_errors.for_code(left.error_code).__name__
        raise BrokerError(f"LeaveGroup {group_id!r} after claiming it: {name}")
