"""One ``ingestor up`` per data dir: a pid file held under an exclusive ``flock``.

The lock, not the file, is what counts: the kernel drops it when its process dies however it
dies, so a file left by a dead ``up`` (even after ``kill -9``) is simply taken over. The pid in
it is only for the message. Child processes do not inherit the descriptor (``O_CLOEXEC``,
``subprocess``'s ``close_fds``), so the lock goes when ``up`` goes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from ingestor.errors import ConfigError

__all__ = ["DataDirInUse", "PidLock", "held"]

LOCK_NAME = "up.pid"


def held(data_dir: Path) -> bool:
    """Whether a live ``ingestor up`` holds ``data_dir`` now (its lock is taken)."""
    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this took
    return False


class DataDirInUse(ConfigError):
    """Another live process holds the data dir."""


class PidLock:
    """``with PidLock(data_dir):`` — raises ``DataDirInUse`` naming the holder's pid."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"another `ingestor up` is using {self.data_dir} (pid {holder}); stop it, or set "
                "INGESTOR_DATA_DIR to another directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the lock
        self._fd = None

    def __enter__(self) -> PidLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
