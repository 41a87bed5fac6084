"""The pure parts of the Apache Kafka test tier and of the shared chdb target."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestor.errors import ConfigError
from ingestor.local.kafka import KafkaCluster, NodePorts, kafka_jars, server_properties
from ingestor.plain_settings import ClickHouseTarget


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_three_nodes_form_one_quorum_with_replicated_internal_topics() -> None:
    nodes = [NodePorts(9001, 9101), NodePorts(9002, 9102), NodePorts(9003, 9103)]
    p = props(server_properties(2, nodes, Path("/d/2")))
    assert p["node.id"] == "2"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102"
    assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9002"
    # A write acknowledged by two of three survives the loss of any one broker.
    assert (p["default.replication.factor"], p["min.insync.replicas"]) == ("3", "2")
    assert p["offsets.topic.replication.factor"] == "3"
    assert p["auto.create.topics.enable"] == "false"
    assert p["log.dirs"] == "/d/2"


def test_one_node_replicates_nothing() -> None:
    p = props(server_properties(1, [NodePorts(9001, 9101)], Path("/d")))
    assert (p["default.replication.factor"], p["min.insync.replicas"]) == ("1", "1")
    assert p["transaction.state.log.min.isr"] == "1"


def test_no_java_or_maven_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="java and mvn"):
        kafka_jars(cache=Path("/nonexistent"))
    with pytest.raises(ConfigError):
        KafkaCluster(0)


def test_a_shared_chdb_url_carries_its_key_as_a_secret() -> None:
    t = ClickHouseTarget.parse("chdb+tcp://:s3cret@127.0.0.1:4567/db", default_path=Path("."))
    assert (t.kind, t.host, t.port, t.database) == ("shared", "127.0.0.1", 4567, "db")
    assert t.password.get_secret_value() == "s3cret"
    assert "s3cret" not in str(t) and "s3cret" not in repr(t)
