"""Apache Kafka itself on loopback, without Docker: Maven's jars and a KRaft cluster in a temp dir.

For tests and local experiments against the real broker rather than the embedded Tansu.

* ``kafka_jars()`` resolves ``org.apache.kafka:kafka_2.13`` and its runtime dependencies with the
  machine's Maven into ``~/.cache/ingestor/kafka-<version>/jars`` once (a ``.complete`` marker
  says the copy finished; a lock file serialises concurrent installs). No Java or no Maven is a
  ``ConfigError``; a failed resolve a ``LocalBrokerError`` with Maven's output.
* ``KafkaCluster(n)`` formats and starts ``n`` combined broker+controller nodes (one KRaft quorum
  of ``n`` voters) on free loopback ports, topics replicated ``min(n, 3)`` times with
  ``min.insync.replicas`` one below that, and returns from ``start()`` once every broker is
  registered with the quorum and answers Metadata. Nodes die with the process that started
  them (``PR_SET_PDEATHSIG``); ``kill(i)`` / ``restart(i)`` take one node down and up again with
  its log intact (real Kafka keeps its log on disk).
* ``server_properties()`` is the pure part: one node's configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from ingestor.errors import ConfigError, LocalBrokerError
from ingestor.local.stack import die_with_parent_hook, free_port

__all__ = ["KAFKA_VERSION", "KafkaCluster", "NodePorts", "kafka_jars", "server_properties"]

#: Served by Maven Central and speaks every protocol version aiokafka 0.14 uses (checked by the
#: integration tests). Kafka 4 needs Java 17.
KAFKA_VERSION = "4.1.1"
_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ingestor"
_TAIL_BYTES = 4096
# A small heap and the C1 compiler only: a test broker starts in ~4 s instead of ~8 s on a busy
# two-core machine, and its throughput is far above what the tests send.
_JVM = ("-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ingestor.local</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
"""


def kafka_jars(version: str = KAFKA_VERSION, *, cache: Path | None = None) -> Path:
    """The directory holding Kafka ``version``'s jars, resolved with Maven on first use."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None or mvn is None:
        missing = " and ".join(n for n, p in (("java", java), ("mvn", mvn)) if p is None)
        raise ConfigError(f"Apache Kafka needs {missing} on PATH (Java 17+, Maven)")
    if (major := _java_major(java)) < 17:
        raise ConfigError(f"Apache Kafka {version} needs Java 17 or later; {java} is {major}")
    home = (cache or _CACHE) / f"kafka-{version}"
    jars = home / "jars"
    if (home / ".complete").exists():
        return jars
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing the same version
        if (home / ".complete").exists():
            return jars
        shutil.rmtree(jars, ignore_errors=True)
        (home / "pom.xml").write_text(_POM.format(version=version), encoding="utf-8")
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={jars}", "-DincludeScope=runtime"],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0 or not any(jars.glob(f"kafka_2.13-{version}.jar")):
            tail = (result.stdout + result.stderr)[-_TAIL_BYTES:]
            raise LocalBrokerError(f"Maven could not resolve Apache Kafka {version}:\n{tail}")
        (home / ".complete").write_text(version, encoding="utf-8")
    return jars


def _java_major(java: str) -> int:
    """The feature release of ``java`` (``openjdk version "17.0.15"`` → 17; 0 if unreadable)."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return 0
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first  # "1.8.0" is Java 8


@dataclass(frozen=True, slots=True)
class NodePorts:
    broker: int
    controller: int


def server_properties(
    node_id: int, nodes: Sequence[NodePorts], log_dir: Path, *, host: str = "127.0.0.1"
) -> str:
    """``server.properties`` of node ``node_id`` (1-based) of a combined-mode KRaft cluster."""
    me = nodes[node_id - 1]
    replication = min(len(nodes), 3)
    voters = ",".join(f"{i}@{host}:{p.controller}" for i, p in enumerate(nodes, start=1))
    props = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{me.broker},CONTROLLER://{host}:{me.controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{me.broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": log_dir,
        "auto.create.topics.enable": "false",  # as in production: `ingestor topics create`
        "default.replication.factor": replication,
        "min.insync.replicas": max(1, replication - 1),
        "offsets.topic.replication.factor": replication,
        # The default 50 partitions cost a test broker seconds before the first group can join.
        "offsets.topic.num.partitions": 4,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": max(1, replication - 1),
        "group.initial.rebalance.delay.ms": 0,
        "num.network.threads": 2,
        "num.io.threads": 2,
        "log.flush.interval.messages": 9223372036854775807,
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


class KafkaCluster:
    """``brokers`` KRaft nodes under ``root`` (a temp dir by default). A context manager."""

    def __init__(
        self,
        brokers: int = 1,
        *,
        root: Path | None = None,
        version: str = KAFKA_VERSION,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 120.0,
        graceful_stop: bool = False,
    ) -> None:
        if brokers < 1:
            raise ConfigError("a Kafka cluster needs at least one broker")
        self.size = brokers
        self.host = host
        self._version = version
        self._own_root = root is None
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="ingestor-kafka-"))
        self._timeout = startup_timeout_s
        self._graceful = graceful_stop
        self.nodes = [NodePorts(free_port(host), free_port(host)) for _ in range(brokers)]
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._logs: dict[int, IO[bytes]] = {}
        self._jars: Path | None = None

    @property
    def bootstrap(self) -> str:
        """Every node's listener: clients find the rest from any one that is up."""
        return ",".join(f"{self.host}:{n.broker}" for n in self.nodes)

    def node_dir(self, node_id: int) -> Path:
        return self.root / f"node{node_id}"

    def pid(self, node_id: int) -> int | None:
        proc = self._procs.get(node_id)
        return None if proc is None or proc.poll() is not None else proc.pid

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Install (cached), format and start every node; return once all brokers are up."""
        self._jars = kafka_jars(self._version)
        cluster_id = self._java("kafka.tools.StorageTool", "random-uuid").strip().splitlines()[-1]
        for node_id in range(1, self.size + 1):
            directory = self.node_dir(node_id)
            (directory / "data").mkdir(parents=True, exist_ok=True)
            config = directory / "server.properties"
            properties = server_properties(node_id, self.nodes, directory / "data", host=self.host)
            config.write_text(properties, encoding="utf-8")
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config))
        for node_id in range(1, self.size + 1):
            self._spawn(node_id)
        self.wait_ready(self.size)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (its log stays on disk)."""
        proc = self._procs.get(node_id)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def restart(self, node_id: int) -> None:
        """Start a killed node again on its ports and log; return once the cluster has it."""
        self.kill(node_id)
        self._spawn(node_id)
        self.wait_ready(self.size)

    def stop(self) -> None:
        """Stop every node: SIGKILL (a test cluster is thrown away); SIGTERM if graceful_stop."""
        sig = signal.SIGTERM if self._graceful else signal.SIGKILL
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self._procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs.values():
            log.close()
        self._procs.clear()
        self._logs.clear()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _command(self, main: str, *args: str) -> list[str]:
        assert self._jars is not None
        return ["java", *_JVM, "-cp", f"{self._jars}/*", main, *args]

    def _java(self, main: str, *args: str) -> str:
        result = subprocess.run(
            self._command(main, *args), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-_TAIL_BYTES:]
            raise LocalBrokerError(f"{main} {' '.join(args[:1])} failed:\n{tail}")
        return result.stdout

    def _spawn(self, node_id: int) -> None:
        directory = self.node_dir(node_id)
        log = self._logs.get(node_id)
        if log is None:
            log = self._logs[node_id] = open(directory / "broker.log", "ab")  # noqa: SIM115
        self._procs[node_id] = subprocess.Popen(
            self._command("kafka.Kafka", str(directory / "server.properties")),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent_hook(),  # noqa: PLW1509 - no threads hold locks here
        )

    def wait_ready(self, brokers: int) -> None:
        """Until ``brokers`` brokers are registered and answer; else ``LocalBrokerError``."""
        deadline = time.monotonic() + self._timeout
        last: object = None
        while time.monotonic() < deadline:
            for node_id, proc in self._procs.items():
                if proc.poll() is not None:
                    raise LocalBrokerError(f"Kafka node {node_id} exited:\n{self._tail(node_id)}")
            try:
                # aiokafka logs every refused connection: ask only once the ports listen.
                up = [n for i, n in enumerate(self.nodes, start=1) if self.pid(i) is not None]
                if all(_listening(self.host, n.broker) for n in up) and (
                    asyncio.run(_registered(self.bootstrap)) >= brokers
                ):
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet: any failure means "retry"
                last = exc
            time.sleep(0.3)
        raise LocalBrokerError(
            f"Kafka cluster not ready after {self._timeout}s ({last!r}):\n{self._tail(1)}"
        )

    def _tail(self, node_id: int) -> str:
        with contextlib.suppress(OSError):
            data = (self.node_dir(node_id) / "broker.log").read_bytes()
            return data[-_TAIL_BYTES:].decode(errors="replace")
        return ""


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


async def _registered(bootstrap: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=3000, client_id=f"probe-{uuid.uuid4().hex}"
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()
