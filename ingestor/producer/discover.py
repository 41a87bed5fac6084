"""Finding transcript files and naming them: which project and session a path belongs to, and
the order ccusage reads files in (by path). Only ``find_jsonl`` touches the file system.

Claude Code's layout::

    projects/<encoded-cwd>/<session>.jsonl
    projects/<encoded-cwd>/<session>/subagents/<agent>.jsonl

The project (the directory right under ``projects/``) is the dedup scope and the Kafka key; see
ARCHITECTURE.md, "Keys and partitions".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path, PurePath

__all__ = ["find_jsonl", "order_key", "project_of", "session_of"]

log = logging.getLogger(__name__)

_PROJECTS = "projects"


def find_jsonl(dirs: Iterable[Path | str]) -> list[str]:
    """Absolute paths of every regular ``*.jsonl`` file under ``dirs`` (recursively), sorted.

    As ccusage (``fs::read_dir`` + ``file_type().is_file()``), symlinks are never followed: a
    symlinked ``*.jsonl`` is ignored (logged at debug) and a symlinked directory is not entered,
    so nothing outside the watched tree is read and a link loop cannot trap the scan. FIFOs,
    sockets and devices named ``*.jsonl`` are ignored too. Missing or unreadable directories are
    skipped: Claude Code creates them lazily. A file without read permission *is* listed; the
    watcher skips it while it stays unreadable.
    """
    found: set[str] = set()
    for root in dirs:
        pending = [os.path.abspath(root)]
        while pending:
            directory = pending.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        _visit(entry, pending, found)
            except OSError:
                continue
    return sorted(found)


def _visit(entry: os.DirEntry[str], pending: list[str], found: set[str]) -> None:
    try:
        if entry.is_dir(follow_symlinks=False):
            pending.append(entry.path)
        elif entry.name.endswith(".jsonl"):
            if entry.is_file(follow_symlinks=False):
                found.add(entry.path)
            elif entry.is_symlink():
                log.debug("%s is a symlink: not followed (as ccusage)", entry.path)
    except OSError:  # vanished meanwhile
        return


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
