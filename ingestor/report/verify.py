"""``ingestor verify``: what ClickHouse holds against what the files say, per file and per session.

The files' side is ``corpus.reference`` (the product's own acceptance and dedup rules applied to
the files in one pass, no Kafka or ClickHouse between; the parity tests hold it equal to the
real ccusage). ClickHouse's side is what reports read: the current generation of each file in
``transcript_lines`` / ``dead_letters``, and the counted entries of ``report.entries`` (the rule
run over the stored lines in ccusage's order). ``compare`` is pure.

Per file: lines stored, lines dead-lettered, usage lines and their tokens before dedup (so a
file's own rows are checked whatever other files say). Per session: the counted entries' tokens,
cost and count after dedup. Overall, seed 001's figures: the accuracy ratio (tokens in
ClickHouse / tokens in the files) and the undercount (the share of the files' tokens missing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ingestor.clickhouse.engine import ClickHouse, quote_string
from ingestor.corpus.reference import FileTally, Reference
from ingestor.report.entries import counted_entries
from ingestor.usage.entry import Entry
from ingestor.usage.paths import session_parts

__all__ = ["SessionTally", "Verdict", "compare", "stored_files", "stored_sessions"]

_CURRENT = (
    "(source_file, source_generation) IN "
    "(SELECT source_file, source_generation FROM current_generations)"
)


@dataclass
class SessionTally:
    entries: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)

    def add(self, entry: Entry) -> None:
        self.entries += 1
        self.tokens += entry.total_tokens
        self.cost += entry.cost


def session_tallies(entries: Iterable[Entry]) -> dict[str, SessionTally]:
    out: dict[str, SessionTally] = {}
    for entry in entries:
        out.setdefault(entry.session_id, SessionTally()).add(entry)
    return out


def _under(column: str, dirs: Iterable[str]) -> str:
    return " OR ".join(f"startsWith({column}, {quote_string(d.rstrip('/') + '/')})" for d in dirs)


def stored_files(ch: ClickHouse, dirs: Iterable[str]) -> dict[str, FileTally]:
    """Per file under ``dirs``: what ClickHouse holds of its current generation."""
    dirs = list(dirs)
    out: dict[str, FileTally] = {}
    for file, valid, usage, tokens in ch.query(
        "SELECT source_file, count(), countIf(has_usage = 1), sumIf(input_tokens + "
        "output_tokens + cache_creation_tokens + cache_read_tokens, has_usage = 1) "
        f"FROM transcript_lines FINAL WHERE {_CURRENT} AND ({_under('source_file', dirs)}) "
        "GROUP BY source_file"
    ):
        tally = out.setdefault(str(file), FileTally())
        tally.valid, tally.usage_lines, tally.usage_tokens = int(valid), int(usage), int(tokens)
    for file, dead in ch.query(
        "SELECT source_file, count() FROM dead_letters FINAL WHERE kind = 'transcript' "
        f"AND {_CURRENT} AND ({_under('source_file', dirs)}) GROUP BY source_file"
    ):
        out.setdefault(str(file), FileTally()).invalid = int(dead)
    return out


def stored_sessions(ch: ClickHouse, files: Iterable[str]) -> dict[str, SessionTally]:
    """Counted entries per session, for the sessions of ``files`` (the stored files compared)."""
    sessions = {session_parts(f)[0] for f in files}
    return session_tallies(e for e in counted_entries(ch) if e.session_id in sessions)


@dataclass
class Verdict:
    files: int
    sessions: int
    lines: int
    tokens_on_disk: int
    tokens_stored: int
    cost_on_disk: Decimal
    cost_stored: Decimal
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def accuracy_ratio(self) -> float:
        """Tokens in ClickHouse / tokens in the files (seed 001's figure; 1.0 is exact)."""
        if not self.tokens_on_disk:
            return 1.0 if not self.tokens_stored else float("inf")
        return self.tokens_stored / self.tokens_on_disk

    @property
    def undercount_percent(self) -> float:
        """The share of the files' tokens that ClickHouse lacks (negative: it holds more)."""
        return 100.0 * (1.0 - self.accuracy_ratio) if self.tokens_on_disk else 0.0

    def lines_out(self, shown: int = 20) -> list[str]:
        out = [
            f"files: {self.files:,}; complete lines: {self.lines:,}; sessions: {self.sessions:,}",
            f"tokens counted: files {self.tokens_on_disk:,}, ClickHouse {self.tokens_stored:,}",
            f"cost: files ${self.cost_on_disk:,.6f}, ClickHouse ${self.cost_stored:,.6f}",
            f"accuracy ratio {self.accuracy_ratio:.6f}; undercount {self.undercount_percent:.4f}%",
        ]
        if self.ok:
            return [*out, "OK: ClickHouse holds exactly what the files say"]
        out.append(f"MISMATCH: {len(self.differences):,} difference(s)")
        out.extend(f"  {d}" for d in self.differences[:shown])
        if len(self.differences) > shown:
            out.append(f"  … and {len(self.differences) - shown:,} more")
        return out


def compare(
    reference: Reference,
    files: dict[str, FileTally],
    sessions: dict[str, SessionTally],
) -> Verdict:
    """The files (``reference``) against ClickHouse (``files``, ``sessions``); pure."""
    differences: list[str] = []
    for path in sorted(set(reference.files) | set(files)):
        # A file absent on one side holds nothing there (an empty file, a deleted one).
        disk = reference.files.get(path) or FileTally()
        stored = files.get(path) or FileTally()
        for name in ("valid", "invalid", "usage_lines", "usage_tokens"):
            a, b = getattr(disk, name), getattr(stored, name)
            if a != b:
                differences.append(
                    f"file {path}: {_WORDS[name]} {b:,} in ClickHouse, {a:,} in file"
                )
    on_disk = session_tallies(reference.entries)
    for session in sorted(set(on_disk) | set(sessions)):
        disk_s, stored_s = on_disk.get(session), sessions.get(session)
        if disk_s is None or stored_s is None:
            where = "ClickHouse only" if disk_s is None else "files only"
            differences.append(f"session {session}: counted in {where}")
            continue
        if (disk_s.entries, disk_s.tokens, disk_s.cost) != (
            stored_s.entries,
            stored_s.tokens,
            stored_s.cost,
        ):
            differences.append(
                f"session {session}: ClickHouse {stored_s.entries:,} entries, "
                f"{stored_s.tokens:,} tokens, ${stored_s.cost}; files {disk_s.entries:,}, "
                f"{disk_s.tokens:,}, ${disk_s.cost}"
            )
    return Verdict(
        files=len(reference.files),
        sessions=len(on_disk),
        lines=reference.accounting.lines,
        tokens_on_disk=sum(s.tokens for s in on_disk.values()),
        tokens_stored=sum(s.tokens for s in sessions.values()),
        cost_on_disk=sum((s.cost for s in on_disk.values()), Decimal(0)),
        cost_stored=sum((s.cost for s in sessions.values()), Decimal(0)),
        differences=differences,
    )


_WORDS = {
    "valid": "lines stored",
    "invalid": "dead letters",
    "usage_lines": "usage lines",
    "usage_tokens": "usage tokens (before dedup)",
}
