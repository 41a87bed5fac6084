"""The watcher's durable position in each file.

A JSON file ``{"version": 1, "files": {path: {generation, inode, offset, first_ts, gone}}}`` under
``data_dir``, replaced atomically (temp file, fsync, rename, fsync of the directory), so a crash
leaves either the old or the new content, never a torn one.

The watcher moves a position only after the broker acknowledged every record before it, and
``save`` writes what has been acknowledged so far: the saved position never runs ahead of the
broker, it may lag behind it (lines are then re-sent; ClickHouse facts are idempotent).

A save writes every file's position, but encodes only those that changed since the last one:
each file's entry is kept as the JSON it was written as (68k files: 65-95 ms of CPU a save
encoding them all, in a 5M-line backfill that saves about once a second). Files are written in
the order they were first seen.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ingestor.errors import ConfigError
from ingestor.settings import Settings

__all__ = ["Checkpoint", "FilePosition", "default_checkpoint_path"]

_VERSION = 1


def default_checkpoint_path(settings: Settings) -> Path:
    return settings.data_dir / "producer" / "checkpoint.json"


@dataclass(frozen=True, slots=True)
class FilePosition:
    """Where the watcher is in one file.

    ``offset`` is the start of the first line not yet acknowledged. ``inode`` None means "not
    bound to a file yet" (a position that came from ClickHouse): the file found at the path is
    taken as this generation rather than as a replacement.

    ``gone`` marks a file found deleted: ``generation`` is then its tombstone, an empty
    generation the broker acknowledged, so the file counts nothing until it comes back (and what
    comes back is read as that generation, from 0).
    """

    generation: int = 0
    inode: int | None = None
    offset: int = 0
    first_ts: str | None = None
    gone: bool = False

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: a save writes every file's position, and asdict is slow.
        return {
            "generation": self.generation,
            "inode": self.inode,
            "offset": self.offset,
            "first_ts": self.first_ts,
            "gone": self.gone,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilePosition:
        return cls(
            generation=int(data["generation"]),
            inode=None if data.get("inode") is None else int(data["inode"]),
            offset=int(data["offset"]),
            first_ts=data.get("first_ts"),
            gone=bool(data.get("gone", False)),
        )


class Checkpoint:
    """Per-file positions, in memory, saved on demand. ``path`` None keeps them in memory only."""

    def __init__(
        self, path: Path | None = None, positions: Mapping[str, FilePosition] | None = None
    ) -> None:
        self.path = path
        self._positions: dict[str, FilePosition] = dict(positions or {})
        self._dirty = False
        self._encoded: dict[str, bytes] = {}  # path -> its '"path":{...}' entry as last written
        self._changed: set[str] = set(self._positions)  # entries to encode again

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """The checkpoint saved at ``path``; empty when there is none.

        Raises ``ConfigError`` when the file exists but cannot be read as a checkpoint: starting
        over silently would re-send every file.
        """
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise ConfigError(f"cannot read watcher checkpoint {path}: {exc}") from exc
        try:
            body = orjson.loads(raw)
            if body.get("version") != _VERSION:
                raise ValueError(f"unsupported version {body.get('version')!r}")
            files = {str(k): FilePosition.from_dict(v) for k, v in body["files"].items()}
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"watcher checkpoint {path} is unreadable ({exc}); move it away to re-read "
                "every file from the start"
            ) from exc
        return cls(path, files)

    def get(self, path: str) -> FilePosition | None:
        return self._positions.get(path)

    def set(self, path: str, position: FilePosition) -> None:
        if self._positions.get(path) != position:
            self._positions[path] = position
            self._changed.add(path)
            self._dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._positions))

    def __len__(self) -> int:
        return len(self._positions)

    @property
    def dirty(self) -> bool:
        """True when there are positions not yet saved."""
        return self._dirty

    def save(self) -> None:
        """Write the positions atomically if changed since the last save. Raises ``OSError``."""
        if not self._dirty or self.path is None:
            self._dirty = False
            return
        encoded, dumps = self._encoded, orjson.dumps
        for path in self._changed:
            encoded[path] = b"%s:%s" % (dumps(path), dumps(self._positions[path].as_dict()))
        self._changed.clear()
        files = b",".join(encoded.values())
        _write_atomic(self.path, b'{"version":%d,"files":{%s}}' % (_VERSION, files))
        self._dirty = False

    def override(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Reset positions from what ClickHouse durably holds: ``{(path, generation): offset}``.

        Used when the broker lost messages the checkpoint counted as sent (the embedded broker
        keeps everything in memory). For each file the checkpoint knows: when ClickHouse holds its
        current generation, resume there; when ClickHouse holds a *later* generation, adopt that;
        otherwise restart the file at 0. Files only ClickHouse knows are adopted at its latest
        generation. ``first_ts`` is kept when the generation is kept, else found again on read.
        A tombstone ClickHouse does not hold is forgotten (``gone`` cleared), so the watcher
        sends a new one if the file is still missing.
        """
        latest: dict[str, int] = {}
        for path, generation in positions:
            latest[path] = max(generation, latest.get(path, generation))
        for path in set(self._positions) | set(latest):
            current = self._positions.get(path)
            if current is not None and (path, current.generation) in positions:
                offset = positions[path, current.generation]
                new = dataclasses.replace(current, offset=offset)
            elif path in latest and (current is None or latest[path] > current.generation):
                generation = latest[path]
                new = FilePosition(generation=generation, offset=positions[path, generation])
            else:
                assert current is not None
                new = dataclasses.replace(current, offset=0, gone=False)
            self.set(path, new)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    # The rename itself is durable only once the directory entry is.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
