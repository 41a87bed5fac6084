"""What ``ingestor up`` shows while it runs and when it stops. Pure: numbers in, text out.

The words, as the display uses them:

* **lines read** — transcript lines the watcher sent to Kafka (bad ones included) in this run;
* **records stored** — input records (transcript lines, events, ledger entries) that ClickHouse
  confirmed; other rows the worker writes (positions, session summaries) are not counted;
* **dead letters** — lines kept out of the counts, each with its reason (``report skipped``);
* **lines behind** — read and not yet stored nor dead-lettered; **caught up** when the watcher
  found nothing new and the worker holds nothing unstored.

Counters of the worker and the watcher restart at 0 with their process; ``Tally`` carries them
across restarts. The percentage and the ETA are by bytes of the files watched (the checkpoint's
positions against the files' sizes), so they hold across restarts of ``up`` too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Rate",
    "ReplaySnapshot",
    "Snapshot",
    "Tally",
    "eta",
    "plain_line",
    "replay_lines",
    "screen_lines",
    "summary_lines",
]

SUMMARY_REASONS = 8  # dead-letter reasons listed in the summary, the commonest first


class Tally:
    """Sums of counters kept by processes that restart.

    ``update(key, identity, value)``: ``value`` is the process's own count; a new ``identity``
    (pid, run id) or a value that went down means a new process, whose count starts again on
    top of what the old one reached.
    """

    def __init__(self) -> None:
        self._base: dict[str, int] = {}
        self._last: dict[str, tuple[object, int]] = {}

    def update(self, key: str, identity: object, value: int) -> int:
        last = self._last.get(key)
        if last is not None and (last[0] != identity or value < last[1]):
            self._base[key] = self._base.get(key, 0) + last[1]
        self._last[key] = (identity, value)
        return self.total(key)

    def total(self, key: str) -> int:
        last = self._last.get(key)
        return self._base.get(key, 0) + (last[1] if last is not None else 0)


class Rate:
    """Per-second rates of growing totals over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, tuple[int, ...]]] = deque()

    def add(self, now: float, *totals: int) -> tuple[float, ...] | None:
        """Record the totals seen at ``now``; their rates, or None until two samples exist."""
        self._samples.append((now, totals))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        first_t, first = self._samples[0]
        if now - first_t <= 0:
            return None
        return tuple(max(0, b - a) / (now - first_t) for a, b in zip(first, totals, strict=True))


@dataclass(frozen=True)
class Snapshot:
    files: int = 0
    lines_read: int = 0
    records_stored: int = 0
    dead_letters: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    lines_per_s: float | None = None
    eta_s: float | None = None
    caught_up: bool = False
    starting: bool = False  # the worker is not consuming yet

    @property
    def behind(self) -> int:
        """Lines read and not yet stored nor dead-lettered (a replay can store a line twice)."""
        return max(0, self.lines_read - self.records_stored - self.dead_letters)

    @property
    def percent(self) -> int | None:
        if self.bytes_total <= 0:
            return None
        return min(100, int(100 * self.bytes_done / self.bytes_total))


def eta(bytes_left: int, bytes_per_s: float | None) -> float | None:
    if bytes_left <= 0:
        return 0.0
    if not bytes_per_s:
        return None
    return bytes_left / bytes_per_s


def screen_lines(s: Snapshot, width: int = 80) -> list[str]:
    """The live display: two lines, each at most ``width`` columns."""
    if s.starting:
        return [_fit([("starting the worker …", 9)], width)]
    read = [(f"read {s.lines_read:,} lines", 9)]
    if s.percent is not None:
        read.append((f"{s.percent}% of the bytes", 8))
    reading = not s.caught_up and (s.bytes_total == 0 or s.bytes_done < s.bytes_total)
    if s.lines_per_s is not None and reading:
        read.append((f"{s.lines_per_s:,.0f} lines/s", 6))
    if s.eta_s is not None and reading:
        read.append((f"ETA {_duration(s.eta_s)}", 7))
    read.append((f"{s.files:,} files", 5))
    stored = [
        (f"stored {s.records_stored:,} records", 9),
        (f"{s.dead_letters:,} dead letters", 7),
        ("caught up" if s.caught_up else f"{s.behind:,} lines behind", 8),
    ]
    return [_fit(read, width), _fit(stored, width)]


def plain_line(s: Snapshot) -> str:
    """One line for a log (stdout not a terminal)."""
    if s.starting:
        return "starting the worker"
    return " | ".join(screen_lines(s, width=1000))


def summary_lines(
    *,
    run: Mapping[str, int],
    stored: int | None,
    skipped: Sequence[Mapping[str, object]],
    data_dir: Path,
    stopped: bool,
) -> list[str]:
    """What ``up`` prints as it ends.

    ``run``: this run's ``lines_read``, ``records_stored``, ``dead_letters``; ``stored``: the
    transcript lines ClickHouse holds in all (None if unknown); ``skipped``: the ``skipped``
    report's rows (``rule``, ``lines``); ``stopped``: Ctrl-C or SIGTERM, not the end of ``--once``.
    """
    out = [
        f"this run: read {run.get('lines_read', 0):,} lines, stored "
        f"{run.get('records_stored', 0):,} records, {run.get('dead_letters', 0):,} dead letters"
    ]
    if stored is not None:
        dead = sum(int(str(row["lines"])) for row in skipped)
        out.append(f"in all: {stored:,} transcript lines stored, {dead:,} dead letters")
    if skipped:
        out.append("dead letters by reason (`ingestor report skipped`):")
    for row in skipped[:SUMMARY_REASONS]:
        out.append(f"  {int(str(row['lines'])):>10,}  {row['rule']}")
    if len(skipped) > SUMMARY_REASONS:
        out.append(f"  … and {len(skipped) - SUMMARY_REASONS} more reasons")
    out.append(f"data in {data_dir} (reports: `ingestor report daily`)")
    if stopped:
        out.append("stopped; run `ingestor up` again to resume where it stopped")
    return out


@dataclass(frozen=True)
class ReplaySnapshot:
    """``ingestor replay`` so far: messages of the planned ranges, and what they held."""

    messages_done: int = 0
    messages_total: int = 0
    records: int = 0  # transcript lines, events, ledger entries rebuilt and written
    dead_letters: int = 0
    records_per_s: float | None = None
    messages_per_s: float | None = None

    @property
    def lag(self) -> int:
        """Messages of the planned ranges not replayed yet."""
        return max(0, self.messages_total - self.messages_done)

    @property
    def eta_s(self) -> float | None:
        return eta(self.lag, self.messages_per_s)


def replay_lines(s: ReplaySnapshot, width: int = 80) -> list[str]:
    """The replay's live display: one line of at most ``width`` columns."""
    percent = 100 if not s.messages_total else int(100 * s.messages_done / s.messages_total)
    parts = [
        (f"replayed {s.messages_done:,}/{s.messages_total:,} messages ({percent}%)", 9),
        (f"{s.records:,} records", 8),
        (f"{s.dead_letters:,} dead letters", 5),
    ]
    if s.records_per_s is not None:
        parts.append((f"{s.records_per_s:,.0f} records/s", 6))
    parts.append((f"lag {s.lag:,} messages", 7))
    if s.eta_s is not None and s.lag:
        parts.append((f"ETA {_duration(s.eta_s)}", 7))
    return [_fit(parts, width)]


def _fit(parts: list[tuple[str, int]], width: int) -> str:
    """The texts joined by two spaces; the lowest priorities give way until the line fits."""
    kept = list(parts)
    while len(kept) > 1 and len("  ".join(t for t, _ in kept)) > width:
        kept.remove(min(reversed(kept), key=lambda part: part[1]))
    text = "  ".join(t for t, _ in kept)
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _duration(seconds: float) -> str:
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
