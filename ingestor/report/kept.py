"""Report answers kept on disk, for ``ingestor report`` when no worker runs.

A fresh ``ingestor report`` opens the embedded engine itself, and that costs more than the query:
chdb's import (0.14 s) and its open (0.16 s), on top of Python's start. So the answer is kept in
the data dir beside the state of the stored data it was built from; a later ask finds the same
state and prints the kept answer without loading the engine at all.

The state is read from the engine's files, not from the engine (that would cost its open). A
MergeTree part never changes once written: an insert, a merge or a mutation writes a new
directory under a new name, and retires old ones (``report/answers.py`` relies on the same). So
the part directories of every table (name, inode, modification time) and the definitions (the
``.sql`` files) say what every table holds, and while they are the same so is every answer
built from them. Left out, because no answer depends on them: parts being written (``tmp*``) or
removed (``delete_tmp*``), ``detached`` parts, the insert dedup log, and an EmbeddedRocksDB
table's files (``copy_groups``: only writers read it, and RocksDB rewrites its files on every
open). An outdated part that the engine's cleanup removes changes the state although no data
changed: that costs one build, never a wrong answer.

The request and the code that builds the answer (the package's files) name the kept file, so an
upgrade or an edit builds again. Kept only for ``ReportRequest.keepable`` requests. Stdlib only:
this runs before anything heavy is imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from ingestor.report.request import ReportRequest

__all__ = ["KeptAnswers", "code_state", "engine_state"]

_IGNORED = frozenset({"detached", "deduplication_logs", "format_version.txt"})
_TRANSIENT = ("tmp", "delete_tmp")
_ROCKSDB = frozenset({"CURRENT", "IDENTITY"})  # files every RocksDB directory has
_PACKAGE = Path(__file__).resolve().parent.parent
_SUFFIX = ".answer"


def engine_state(path: Path) -> str | None:
    """A digest of what the embedded engine under ``path`` holds (see above); None when it
    cannot be read whole (no engine there, or a file went away while it was read)."""
    digest = hashlib.sha256()
    try:
        for name in sorted(os.listdir(path / "metadata")):
            if name.endswith(".sql"):
                _add(digest, name, os.stat(path / "metadata" / name))
        store = path / "store"
        for prefix in sorted(os.listdir(store)):
            for table in sorted(os.listdir(store / prefix)):
                _add_table(digest, store / prefix / table)
    except OSError:
        return None
    return digest.hexdigest()


def _add_table(digest: hashlib._Hash, directory: Path) -> None:
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    if {entry.name for entry in entries} >= _ROCKSDB:
        return
    digest.update(f"{directory.name}/\n".encode())
    for entry in entries:
        if entry.name in _IGNORED or entry.name.startswith(_TRANSIENT):
            continue
        _add(digest, entry.name, entry.stat(follow_symlinks=False))


def _add(digest: hashlib._Hash, name: str, st: os.stat_result) -> None:
    # A part directory's size is meaningless, and the same for all; a file's is not.
    digest.update(f"{name}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())


def code_state() -> str:
    """A digest of the package's source files (path, size, modification time)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(_PACKAGE):
        dirs.sort()
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in sorted(files):
            if name.endswith((".py", ".json", ".sql")):
                st = os.stat(os.path.join(root, name))
                digest.update(f"{root}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class KeptAnswers:
    """The answers kept under ``root``: at most ``size`` of them and ``max_bytes`` together (a
    session report over millions of lines is megabytes); the least recently kept go first, the
    last one kept stays whatever its size.

    A failure to keep (a read-only or full disk) is not an error: the answer was printed, and
    the next ask builds it again."""

    def __init__(self, root: Path, code: str, size: int = 32, max_bytes: int = 64 << 20) -> None:
        self._root = root
        self._code = code
        self._size = size
        self._max_bytes = max_bytes

    def get(self, request: ReportRequest, state: str) -> bytes | None:
        """The answer kept for ``request`` while the engine was in ``state``, if any."""
        try:
            with open(self._path(request), "rb") as kept:
                head = json.loads(kept.readline())
                if head != self._head(request, state):
                    return None
                return kept.read()
        except (OSError, ValueError):
            return None

    def put(self, request: ReportRequest, state: str, answer: bytes) -> None:
        """Keep ``answer`` to ``request``, built while the engine was in ``state``."""
        path = self._path(request)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        with contextlib.suppress(OSError):
            self._root.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                out.write(json.dumps(self._head(request, state)).encode() + b"\n")
                out.write(answer)
            os.replace(partial, path)  # whole or not at all
            self._prune()
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)

    def _head(self, request: ReportRequest, state: str) -> dict[str, object]:
        return {"request": _wanted(request), "code": self._code, "state": state}

    def _path(self, request: ReportRequest) -> Path:
        name = hashlib.sha256(f"{_wanted(request)}\0{self._code}".encode()).hexdigest()[:32]
        return self._root / f"{name}{_SUFFIX}"

    def _prune(self) -> None:
        kept = [(p.stat(), p) for p in self._root.glob(f"*{_SUFFIX}")]
        kept.sort(key=lambda entry: entry[0].st_mtime_ns, reverse=True)
        total = 0
        for n, (st, path) in enumerate(kept):
            total += st.st_size
            if n and (n >= self._size or total > self._max_bytes):
                path.unlink(missing_ok=True)


def _wanted(request: ReportRequest) -> str:
    return json.dumps([request.kind, sorted(request.to_query().items())])
