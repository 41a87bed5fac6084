"""Finding transcript files and naming them: which project and session a path belongs to, and
the order ccusage reads files in (by path). Only ``find_jsonl`` touches the file system.

Claude Code's layout::

    projects/<encoded-cwd>/<session>.jsonl
    projects/<encoded-cwd>/<session>/subagents/<agent>.jsonl

The project (the directory right under ``projects/``) is the dedup scope and the Kafka key; see
ARCHITECTURE.md, "Keys and partitions".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePath

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


def order_key(path: str) -> str:
    """ccusage 20.x's file order: by path (``paths.rs``: ``usage_files`` sorts the paths).

    Within a dedup scope the first copy read wins a tie, so sending files in this order makes the
    stream's order ccusage's.
    """
    return path
