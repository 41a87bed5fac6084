"""What ``ingestor up`` checks before it starts anything, so a mistake is one line naming it.

Each check raises ``ConfigError`` with the path or port and the fix, or returns warnings.
"""

from __future__ import annotations

import difflib
import errno
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from ingestor.errors import ConfigError

__all__ = ["check_data_dir", "check_port", "check_watch_dirs"]


def check_data_dir(data_dir: Path) -> None:
    """The data dir exists (created if need be) and this user can write in it."""
    fix = "set INGESTOR_DATA_DIR to a directory you can write"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError | NotADirectoryError):
            why = "a file is in the way" if data_dir.is_file() else "a parent is not a directory"
        raise ConfigError(f"cannot create the data dir {data_dir} ({why}): {fix}") from exc
    if not data_dir.is_dir():
        raise ConfigError(f"the data dir {data_dir} is not a directory: {fix}")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"the data dir {data_dir} is not writable: {fix}")


def check_port(host: str, port: int) -> None:
    """Nothing listens on ``host:port`` yet (the worker's HTTP views bind it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the worker's server does: a port left in TIME_WAIT by a previous run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is in use (the worker's HTTP views need it; another "
                    "`ingestor up`?): set INGESTOR_WEB_PORT to a free port"
                ) from exc
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): check "
                "INGESTOR_WEB_HOST and INGESTOR_WEB_PORT"
            ) from exc


def check_watch_dirs(dirs: Sequence[Path], *, once: bool) -> list[str]:
    """Warnings for watch dirs that do not exist yet; with ``once``, a ``ConfigError`` instead
    (nothing would ever be read), naming the dir and what it may be a typo of."""
    warnings = []
    for d in dirs:
        if d.is_dir():
            continue
        what = f"{d} is not a directory" if d.exists() else f"{d} does not exist"
        hint = _near(d)
        if once:
            raise ConfigError(f"{what}{hint}: check the directories given to `ingestor up`")
        warnings.append(f"warning: {what}{hint}; it will be watched when it is created")
    return warnings


def _near(missing: Path) -> str:
    """`` (did you mean X?)`` for the first missing part of the path, if a sibling is close."""
    parent = missing
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        first = missing.relative_to(parent).parts[0]
        names = [p.name for p in parent.iterdir() if p.is_dir()]
    except (OSError, ValueError, IndexError):
        return ""
    close = difflib.get_close_matches(first, names, n=1, cutoff=0.75)
    if not close:
        return ""
    rest = missing.relative_to(parent / first)
    return f" (did you mean {parent / close[0] / rest}?)"
