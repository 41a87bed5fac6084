"""The wire format: one Kafka message carries one record or an envelope of records.

Faust spends ~250 µs of CPU per Kafka message, so producers batch: an envelope holds up to a few
hundred records that share a message key. A bare JSON object (one record) is accepted too, so
any producer that cannot batch still works.

Envelope (JSON, UTF-8)::

    {"v": 1, "kind": "transcript" | "event" | "ledger",
     "source": {...} | null,          # transcripts: the file every record comes from
     "records": [ {...}, ... ]}

Version 2 (transcripts only) adds ``"lines": {column: [values...]}``: well-formed lines as one list
a column (``LINE_COLUMNS``), the form the worker stores them in without a Python object a line
(``worker/line_columns.py`` checks every value); ``records`` then holds the other lines. The
watcher sends version 1 when no line of an envelope has the common shape.

Version 3 (transcripts only) is a **bundle**, ``{"v": 3, "kind": "transcript", "envelopes":
[...]}``: several envelopes of version 1 or 2 (of one or several files) in one message, in
order. The watcher bundles the envelopes it has ready (a backfill's small files: ~70 lines
each), so that Faust's cost per message is paid once for them all; an envelope alone travels as
itself.

Transcript records are ``{"offset": int, "length": int, "line": {...stripped line...}}``, or
``{"offset", "length", "error": str, "sha256": str}`` (plus ``"shape"``, the structure of a JSON
object, and ``"field"``) for a line that cannot be stored: no text of it travels, only enough for
the worker to dead-letter it with its location (``producer/lines.py``, ``ingestor/redact.py``).
The source is
``{"file", "generation", "project", "first_ts", "scope"}`` where ``generation`` counts truncations
and replacements of the file, ``first_ts`` is the file's earliest timestamp (ccusage's order) and
``scope`` is the dedup scope (one watcher's sources; also the message key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson

from ingestor.errors import InvalidEnvelope

__all__ = [
    "BUNDLE_VERSION",
    "BadEnvelope",
    "LINES_VERSION",
    "LINE_COLUMNS",
    "LINE_STRINGS",
    "WIRE_VERSION",
    "Envelope",
    "Kind",
    "TranscriptSource",
    "decode_message",
    "decode_messages",
    "encode_bundle",
    "encode_envelope",
]

WIRE_VERSION = 1
LINES_VERSION = 2
BUNDLE_VERSION = 3
Kind = Literal["transcript", "event", "ledger"]
# The columns of a version 2 envelope's ``lines``, in this order on the watcher's side. Strings
# are '' where the line has none; ``ts`` is epoch milliseconds (0: none); the token columns are
# 0 and ``tier``/``speed`` '' on a line without usage; ``cost`` is the line's ``costUSD`` as
# decimal text or null; ``reset`` is the usage limit's reset in epoch milliseconds (0: none).
LINE_COLUMNS = (
    *("offset", "length", "type", "session", "uuid", "parent", "request", "message", "ts"),
    *("sidechain", "api_error", "model", "usage", "input", "output", "cache_read", "cache_5m"),
    *("cache_1h", "tier", "speed", "cost", "reset", "tools", "cwd", "version"),
)
LINE_STRINGS = (
    *("type", "session", "uuid", "parent", "request", "message", "model", "tier", "speed"),
    *("cwd", "version"),
)  # the columns of strings


@dataclass(frozen=True, slots=True)
class TranscriptSource:
    """The file a transcript envelope's lines come from."""

    file: str
    project: str
    generation: int = 0
    first_ts: str | None = None  # ISO-8601 of the file's earliest line
    scope: str = ""  # the dedup scope: one watcher's sources (see ARCHITECTURE.md)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "project": self.project,
            "generation": self.generation,
            "first_ts": self.first_ts,
            "scope": self.scope,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TranscriptSource:
        if not isinstance(data, dict):
            raise InvalidEnvelope("must be an object", "source")
        file, project = data.get("file"), data.get("project")
        generation = data.get("generation", 0)
        first_ts = data.get("first_ts")
        scope = data.get("scope", "")
        if not isinstance(file, str) or not file:
            raise InvalidEnvelope("must be a non-empty string", "source.file")
        if not isinstance(project, str):
            raise InvalidEnvelope("must be a string", "source.project")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise InvalidEnvelope("must be a non-negative integer", "source.generation")
        if first_ts is not None and not isinstance(first_ts, str):
            raise InvalidEnvelope("must be a string or null", "source.first_ts")
        if not isinstance(scope, str):
            raise InvalidEnvelope("must be a string", "source.scope")
        return cls(file, project, generation, first_ts, scope)


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Kind
    records: Sequence[Any]
    source: TranscriptSource | None = None
    version: int = WIRE_VERSION
    lines: Mapping[str, list[Any]] | None = None  # version 2: LINE_COLUMNS -> values

    @property
    def count(self) -> int:
        """The lines it carries: its records and the lines sent in columns."""
        return len(self.records) + (len(self.lines["offset"]) if self.lines else 0)

    @property
    def empty(self) -> bool:
        """No record and no line: a transcript envelope that announces a generation."""
        return not self.records and not (self.lines and self.lines["offset"])

    def in_file_order(self) -> list[Any]:
        """The records and the lines sent in columns, by offset in the file; a line as a record
        ``{"offset", "length", "line": {column: value}}`` without its empty strings (what a
        record's line lacks). For tools and tests: the worker reads the columns as they are."""
        if self.lines is None:
            return list(self.records)
        items = list(self.records)
        for values in zip(*(self.lines[c] for c in LINE_COLUMNS), strict=True):
            line = {c: v for c, v in zip(LINE_COLUMNS, values, strict=True) if v != ""}
            items.append({"offset": line["offset"], "length": line["length"], "line": line})
        return sorted(
            items, key=lambda item: item.get("offset", -1) if isinstance(item, dict) else -1
        )


def encode_envelope(
    kind: Kind,
    records: Sequence[Any],
    source: TranscriptSource | None = None,
    lines: Mapping[str, Sequence[Any]] | None = None,
) -> bytes:
    """An envelope's bytes; with ``lines`` (LINE_COLUMNS -> values), version 2."""
    version = WIRE_VERSION if lines is None else LINES_VERSION
    body: dict[str, Any] = {"v": version, "kind": kind, "records": list(records)}
    if source is not None:
        body["source"] = source.as_dict()
    if lines is not None:
        body["lines"] = lines
    return orjson.dumps(body, default=_default)


def _default(value: Any) -> Any:
    # Decimal money travels as a string so that no float ever touches it.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_bundle(envelopes: Sequence[bytes]) -> bytes:
    """Transcript envelopes (``encode_envelope``'s bytes) as one message, in order: spliced,
    not encoded again."""
    return b'{"v":3,"kind":"transcript","envelopes":[' + b",".join(envelopes) + b"]}"


@dataclass(frozen=True, slots=True)
class BadEnvelope:
    """An item of a bundle that is no envelope: why, and its bytes (encoded again)."""

    error: InvalidEnvelope
    raw: bytes


def decode_message(kind: Kind, data: bytes | None) -> Envelope:
    """Decode a Kafka message value into an envelope of ``kind``; a bare record is wrapped.

    Raises ``InvalidEnvelope`` for anything that is not one of the two shapes (a bundle
    included: ``decode_messages`` reads every shape).
    """
    body = _body(data)
    if "envelopes" in body:
        raise InvalidEnvelope("a bundle of envelopes where one was expected", "envelopes")
    return _envelope(kind, body)


def decode_messages(kind: Kind, data: bytes | None) -> list[Envelope | BadEnvelope]:
    """A Kafka message value's envelopes: the one it is (``decode_message``), or a bundle's, in
    order, each item that is no envelope a ``BadEnvelope`` beside the others.

    Raises ``InvalidEnvelope`` when the message itself is neither.
    """
    body = _body(data)
    if "envelopes" not in body:
        return [_envelope(kind, body)]
    if body.get("v") != BUNDLE_VERSION or kind != "transcript":
        raise InvalidEnvelope("a bundle must be version 3, of transcripts", "v")
    if body.get("kind", kind) != kind:
        raise InvalidEnvelope("a bundle of another kind on the transcript topic", "kind")
    items = body["envelopes"]
    if not isinstance(items, list) or not items:
        raise InvalidEnvelope("must be a non-empty list", "envelopes")
    out: list[Envelope | BadEnvelope] = []
    for item in items:
        try:
            if not isinstance(item, dict) or "records" not in item or "envelopes" in item:
                raise InvalidEnvelope("an item of a bundle must be an envelope", "envelopes")
            out.append(_envelope(kind, item))
        except InvalidEnvelope as exc:
            out.append(BadEnvelope(exc, orjson.dumps(item)))
    return out


def _body(data: bytes | None) -> dict[str, Any]:
    if not data:
        raise InvalidEnvelope("empty message")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEnvelope(f"not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidEnvelope(f"expected a JSON object, got {type(body).__name__}")
    return body


def _envelope(kind: Kind, body: dict[str, Any]) -> Envelope:
    if "records" not in body:
        if kind == "transcript":
            return _single_transcript(body)
        return Envelope(kind=kind, records=(body,))
    version = body.get("v")
    if version != WIRE_VERSION and not (version == LINES_VERSION and kind == "transcript"):
        shown = repr(version) if isinstance(version, int) else f"of type {type(version).__name__}"
        raise InvalidEnvelope(f"unsupported envelope version {shown}", "v")
    if (other := body.get("kind", kind)) != kind:
        # Values a producer sent are not echoed (they may be text); only the known kinds are.
        shown = repr(other) if other in ("transcript", "event", "ledger") else "another"
        raise InvalidEnvelope(f"a {shown} envelope on the {kind} topic", "kind")
    records = body["records"]
    if not isinstance(records, list):
        raise InvalidEnvelope("must be a list", "records")
    source = None
    if kind == "transcript":
        source = TranscriptSource.from_dict(body.get("source"))
    if version == LINES_VERSION:
        lines = _lines(body.get("lines"))
        return Envelope(kind, records, source, LINES_VERSION, lines)
    return Envelope(kind=kind, records=records, source=source)


def _lines(lines: Any) -> dict[str, list[Any]]:
    """A version 2 envelope's ``lines``: every column of ``LINE_COLUMNS`` a list, all of one
    length (their values are the worker's to check, line by line)."""
    if not isinstance(lines, dict):
        raise InvalidEnvelope("must be an object", "lines")
    if lines.keys() != set(LINE_COLUMNS):
        missing = sorted(set(LINE_COLUMNS) - lines.keys())
        # Only names of ours are echoed: a producer's key may be text.
        raise InvalidEnvelope(
            f"lacks columns {missing}" if missing else "has columns this worker does not know",
            "lines",
        )
    length = -1
    for name in LINE_COLUMNS:
        values = lines[name]
        if not isinstance(values, list):
            raise InvalidEnvelope("must be a list", f"lines.{name}")
        if length >= 0 and len(values) != length:
            raise InvalidEnvelope("columns of unequal length", f"lines.{name}")
        length = len(values)
    return lines


def _single_transcript(body: dict[str, Any]) -> Envelope:
    # A lone transcript record names its own source: {"source": {...}, "offset", "length", "line"}.
    source = TranscriptSource.from_dict(body.get("source"))
    record = {k: v for k, v in body.items() if k != "source"}
    return Envelope(kind="transcript", records=(record,), source=source)
