"""What the pipeline must store and report for a transcript tree, computed straight from the files.

The oracle of the crash and end-to-end tests: the product's pure steps (``producer.usage``:
acceptance as ccusage 20.x, ``usage.dedup``: its duplicate rule) applied to the files in one
pass, with no Kafka, Faust or ClickHouse in between, so a test can tell what a pipeline run lost
or doubled. It is *not* an independent reading of ccusage's rules: the parity tests
(``tests/parity/``) hold these numbers equal to the real ccusage binary's on the same files.

Order as ccusage reads: every ``*.jsonl`` under ``root/projects`` by path, lines in file order.
Files as the watcher reads them: regular files only, never through a symlink (as ccusage), and a
file that cannot be opened is left out (the watcher skips it until it can be read); a line longer
than ``max_line_bytes`` is dead-lettered unread, and one whose record encodes to more than
``max_record_bytes`` (the watcher's limit is the envelope size less the file's header, so this
default is near it, not equal: only absurd lines come close) is dead-lettered.
``accounting`` says where every complete line went: ``lines == valid + invalid`` (valid: stored
in ``transcript_lines``; invalid: dead-lettered, blank lines included),
``usage_lines == counted + duplicates``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ingestor.errors import InvalidInput
from ingestor.models import validate_transcript_line
from ingestor.producer.discover import find_jsonl
from ingestor.producer.tail import MAX_LINE_BYTES, open_regular
from ingestor.producer.usage import usage_record
from ingestor.rows.records import NO_COSTS, usage_costs
from ingestor.usage.dedup import Copy, Deduper
from ingestor.usage.entry import Entry
from ingestor.usage.paths import project_of, session_parts
from ingestor.usage.prices import SYNTHETIC_MODEL
from ingestor.usage.reports_core import Summary

__all__ = ["Accounting", "Entry", "FileTally", "Reference", "Totals"]

Totals = Summary  # one totals type: the report row's

MAX_RECORD_BYTES = 900_000 - 1024  # the default envelope size less a typical header


@dataclass(frozen=True)
class Accounting:
    lines: int
    valid: int
    invalid: int
    usage_lines: int
    counted: int
    duplicates: int


@dataclass
class FileTally:
    """One file's complete lines: stored, dead-lettered, and its accepted usage lines with their
    tokens before dedup (what ``transcript_lines`` holds of it, whatever other files say)."""

    valid: int = 0
    invalid: int = 0
    usage_lines: int = 0
    usage_tokens: int = 0


@dataclass(frozen=True)
class Reference:
    """The counted entries of a tree; build it with ``Reference.load(root)``."""

    entries: list[Entry]
    accounting: Accounting
    files: dict[str, FileTally] = field(default_factory=dict)  # by path, as the watcher names it

    @classmethod
    def load(
        cls,
        root: Path,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> Reference:
        return cls.load_dirs(
            [root / "projects"], max_line_bytes=max_line_bytes, max_record_bytes=max_record_bytes
        )

    @classmethod
    def load_dirs(
        cls,
        dirs: list[Path],
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> Reference:
        """The tree of the watched directories ``dirs`` (``projects/`` directories), one scope."""
        lines = valid = usage = 0
        deduper: Deduper[Entry] = Deduper()
        files: dict[str, FileTally] = {}
        for path in find_jsonl(dirs):
            data = _read(path)
            if data is None:
                continue
            tally = files[path] = FileTally()
            for raw in data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]:  # complete lines only
                lines += 1
                too_long = len(raw) > max_line_bytes
                line = None if too_long else _stored_line(raw, max_record_bytes)
                if line is None:
                    tally.invalid += 1
                    continue
                valid += 1
                tally.valid += 1
                entry_copy = _usage_entry(line, path)
                if entry_copy is not None:
                    usage += 1
                    tally.usage_lines += 1
                    tally.usage_tokens += entry_copy[0].total_tokens
                    deduper.push(entry_copy[1], entry_copy[0])
        counted = len(deduper.kept)
        acc = Accounting(lines, valid, lines - valid, usage, counted, usage - counted)
        return cls(deduper.kept, acc, files)

    def totals(self) -> Totals:
        out = Totals()
        for e in self.entries:
            out.add(e)
        return out

    def daily(self, tz: str = "UTC") -> dict[str, Totals]:
        """``YYYY-MM-DD`` in ``tz`` -> totals, sorted by date."""
        zone = ZoneInfo(tz)
        return self._group(lambda e: _local(e, zone).strftime("%Y-%m-%d"))

    def monthly(self, tz: str = "UTC") -> dict[str, Totals]:
        zone = ZoneInfo(tz)
        return self._group(lambda e: _local(e, zone).strftime("%Y-%m"))

    def sessions(self) -> dict[str, Totals]:
        """By ccusage's session (the file, or the directory of a subagent's file)."""
        return self._group(lambda e: e.session_id)

    def models(self) -> dict[str, Totals]:
        """Per model; ``<synthetic>`` lines and lines without a model are left out."""
        return self._group(lambda e: e.model)

    def _group(self, key: Callable[[Entry], str | None]) -> dict[str, Totals]:
        out: dict[str, Totals] = {}
        for e in self.entries:
            k = key(e)
            if k is not None:
                out.setdefault(k, Totals()).add(e)
        return dict(sorted(out.items()))


def _local(entry: Entry, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(entry.timestamp_ms / 1000, UTC).astimezone(zone)


def _read(path: str) -> bytes | None:
    try:
        fd = open_regular(path)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _stored_line(raw: bytes, max_record_bytes: int) -> dict[str, Any] | None:
    """The line the worker stores for ``raw``, or None when it is dead-lettered."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    record, error = usage_record(raw, obj, 0, len(raw) + 1)
    if error is not None or len(orjson.dumps(record)) > max_record_bytes:
        return None
    line: dict[str, Any] = record["line"]
    try:
        validate_transcript_line(line)
    except InvalidInput:
        return None
    return line


def _usage_entry(line: dict[str, Any], path: str) -> tuple[Entry, Copy] | None:
    message = line.get("message")
    usage = message.get("usage") if isinstance(message, dict) else None
    if not isinstance(usage, dict) or not isinstance(message, dict):
        return None
    split = usage.get("cache_creation")
    write_5m, write_1h = (
        (split["ephemeral_5m_input_tokens"], split["ephemeral_1h_input_tokens"])
        if isinstance(split, dict)
        else (usage["cache_creation_input_tokens"], 0)
    )
    tokens = (
        usage["input_tokens"],
        usage["output_tokens"],
        write_5m + write_1h,
        usage["cache_read_input_tokens"],
        write_5m,
        write_1h,
    )
    model = message.get("model") or ""
    speed = usage.get("speed") or ""
    raw_cost = line.get("costUSD")
    cost_usd = None if raw_cost is None else Decimal(repr(raw_cost))
    costs = usage_costs(model, tokens, speed, cost_usd) if usage else NO_COSTS
    session_id, project_path = session_parts(path)
    entry = Entry(
        timestamp_ms=round(datetime.fromisoformat(line["timestamp"]).timestamp() * 1000),
        project=project_of(path),
        session_id=session_id,
        project_path=project_path,
        model=None
        if model in ("", SYNTHETIC_MODEL)
        else (model + "-fast" if speed == "fast" else model),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_creation_tokens=tokens[2],
        cache_read_tokens=tokens[3],
        cost=costs[0],
        version=line.get("version"),
    )
    copy = Copy(
        message_id=message.get("id"),
        request_id=line.get("requestId"),
        is_sidechain=line.get("isSidechain") is True,
        total=entry.total_tokens,
        has_speed=bool(speed),
        timestamp_ms=entry.timestamp_ms,
        session_id=line.get("sessionId"),
    )
    return entry, copy
