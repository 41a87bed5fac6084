"""Topic definitions load, get the prefix, and their example messages decode."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from ingestor.errors import ConfigError
from ingestor.kafka.topics import DEFINITIONS, load_topic_defs
from ingestor.models import validate_event, validate_ledger, validate_transcript_line
from ingestor.producer.lines import column_row
from ingestor.settings import Settings
from ingestor.wire import LINE_COLUMNS, LINES_VERSION, WIRE_VERSION, Kind, decode_message
from ingestor.worker.line_columns import line_columns

EXAMPLES = DEFINITIONS.parent / "examples"
DAY_MS = 24 * 3600 * 1000


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


def test_definitions_cover_every_topic() -> None:
    defs = {d.base: d for d in load_topic_defs(settings(topic_partitions=6))}

    assert list(defs) == ["transcripts", "events", "ledger", "dead-letters"]
    assert {b: d.kind for b, d in defs.items()} == {
        "transcripts": "transcript",
        "events": "event",
        "ledger": "ledger",
        "dead-letters": None,
    }
    assert {b: d.key for b, d in defs.items()} == {
        "transcripts": "scope",
        "events": "session_id",
        "ledger": "user_id",
        "dead-letters": "source",
    }
    assert {b: d.retention_ms // DAY_MS for b, d in defs.items()} == {
        "transcripts": 7,
        "events": 7,
        "ledger": 30,
        "dead-letters": 30,
    }
    assert all(d.partitions == 6 and d.cleanup == "delete" for d in defs.values())
    assert defs["ledger"].configs() == {
        "retention.ms": str(30 * DAY_MS),
        "cleanup.policy": "delete",
    }


def test_names_get_the_prefix_and_replication_from_settings() -> None:
    defs = load_topic_defs(settings(topic_prefix="acme.", topic_replication=3))

    assert [d.name for d in defs] == [
        "acme.transcripts",
        "acme.events",
        "acme.ledger",
        "acme.dead-letters",
    ]
    assert {d.replication for d in defs} == {3}


def test_explicit_partitions_override_settings(tmp_path: Path) -> None:
    path = tmp_path / "topics.toml"
    path.write_text('[topics.x]\nkey = "k"\nretention_days = 1\npartitions = 2\n')

    (d,) = load_topic_defs(settings(topic_partitions=8), path)

    assert (d.name, d.partitions, d.retention_ms, d.kind) == ("ingestor.x", 2, DAY_MS, None)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[topics.x]\nretention_days = 1\n", "key"),
        ('[topics.x]\nkey = "k"\n', "retention_days"),
        ('[topics.x]\nkey = "k"\nretention_days = 1\ncleanup = "shred"\n', "cleanup"),
        ('[topics.x]\nkey = "k"\nretention_days = 1\nkind = "audio"\n', "kind"),
        ('[topics.x]\nkey = "k"\nretention_days = 1\npartitions = 0\n', "partitions"),
        ("[other]\n", "no [topics"),
        ("[topics.x\n", "cannot read"),
    ],
)
def test_malformed_definitions_name_the_problem(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "topics.toml"
    path.write_text(text)

    with pytest.raises(ConfigError, match=field.replace("[", r"\[")):
        load_topic_defs(settings(), path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_topic_defs(settings(), tmp_path / "nope.toml")


def _validate(kind: Kind, record: dict[str, Any]) -> None:
    if kind == "transcript":
        if "line" in record:
            validate_transcript_line(record["line"])
    elif kind == "event":
        validate_event(record)
    else:
        validate_ledger(record)


EXAMPLE_FILES = [
    *itertools.product(("transcript", "event", "ledger"), ("envelope", "record")),
    ("transcript", "columns"),  # version 2: lines as columns
]


@pytest.mark.parametrize(("kind", "shape"), EXAMPLE_FILES)
def test_examples_decode_and_validate(kind: Kind, shape: str) -> None:
    data = (EXAMPLES / f"{kind}.{shape}.json").read_bytes()

    envelope = decode_message(kind, data)

    assert envelope.kind == kind
    assert envelope.version == (LINES_VERSION if shape == "columns" else WIRE_VERSION)
    assert envelope.count >= (1 if shape == "record" else 2)
    assert (envelope.source is not None) == (kind == "transcript")
    for record in envelope.records:
        _validate(kind, record)
    if envelope.lines is not None:
        assert envelope.source is not None
        stored, bad = line_columns(envelope.lines, envelope.source)
        assert bad == [] and len(stored[0]) == len(envelope.lines["offset"])


def test_the_columns_example_is_the_envelope_example_as_the_watcher_sends_it() -> None:
    """Its lines as columns (``column_row`` of each of the envelope's lines), the bad line still
    a record, and the same source."""
    columns = decode_message("transcript", (EXAMPLES / "transcript.columns.json").read_bytes())
    envelope = decode_message("transcript", (EXAMPLES / "transcript.envelope.json").read_bytes())

    assert columns.source == envelope.source
    assert columns.lines is not None and columns.records
    items = columns.in_file_order()
    assert len(items) == len(envelope.records)
    for item, record in zip(items, envelope.records, strict=True):
        if "line" not in record:
            assert item == record
            continue
        row = column_row(record, max_record_bytes=1 << 20)
        assert row is not None, record
        line = {c: v for c, v in zip(LINE_COLUMNS, row, strict=True) if v != ""}
        assert item == {"offset": record["offset"], "length": record["length"], "line": line}


def test_examples_carry_their_topic_key() -> None:
    keys = {d.kind: d.key for d in load_topic_defs(settings()) if d.kind is not None}
    for kind in ("event", "ledger"):
        for shape in ("envelope", "record"):
            data = (EXAMPLES / f"{kind}.{shape}.json").read_bytes()
            for record in decode_message(kind, data).records:
                assert keys[kind] in record, (kind, shape)
    for shape in ("envelope", "record", "columns"):
        data = (EXAMPLES / f"transcript.{shape}.json").read_bytes()
        source = decode_message("transcript", data).source
        assert source is not None and getattr(source, keys["transcript"]), shape
