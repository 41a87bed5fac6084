"""Finding transcript files and naming them: which project and session a path belongs to, and
the order ccusage reads files in. Only ``find_jsonl`` touches the file system.

Claude Code's layout::

    projects/<encoded-cwd>/<session>.jsonl
    projects/<encoded-cwd>/<session>/subagents/<agent>.jsonl

The project (the directory right under ``projects/``) is the dedup scope and the Kafka key; see
ARCHITECTURE.md, "Keys and partitions".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path, PurePath

from ingestor.producer.lines import parse_ts

__all__ = ["find_jsonl", "order_key", "project_of", "session_of"]

_PROJECTS = "projects"


def find_jsonl(dirs: Iterable[Path | str]) -> list[str]:
    """Absolute paths of every ``*.jsonl`` file under ``dirs`` (recursively), sorted, unique.

    Missing or unreadable directories are skipped: Claude Code creates them lazily.
    Symlinked subdirectories are not followed, so a link loop cannot trap the scan.
    """
    found: set[str] = set()
    for root in dirs:
        for dirpath, _dirnames, filenames in os.walk(os.path.abspath(root)):
            for name in filenames:
                if name.endswith(".jsonl"):
                    found.add(os.path.join(dirpath, name))
    return sorted(found)


def _dirs(path: str) -> tuple[str, ...]:
    return PurePath(path).parts[:-1]


def project_of(path: str) -> str:
    """The directory right under the last ``projects/`` that has one; else the parent's name."""
    dirs = _dirs(path)
    for index in range(len(dirs) - 2, -1, -1):
        if dirs[index] == _PROJECTS:
            return dirs[index + 1]
    return dirs[-1] if dirs else ""


def session_of(path: str) -> str:
    """The session id a file belongs to: ``<session>.jsonl``, or ``<session>/subagents/*.jsonl``."""
    dirs = _dirs(path)
    if len(dirs) >= 2 and dirs[-1] == "subagents":
        return dirs[-2]
    return PurePath(path).stem


_NO_TS = datetime.min.replace(tzinfo=UTC)


def order_key(first_ts: str | None, path: str) -> tuple[bool, datetime, str]:
    """ccusage's file order: by earliest timestamp, files without one last, ties by path.

    Timestamps compare as instants, not strings (``Z`` and ``+00:00`` spell the same time).
    """
    ts = parse_ts(first_ts)
    if ts is None:
        return (True, _NO_TS, path)
    return (False, ts, path)
