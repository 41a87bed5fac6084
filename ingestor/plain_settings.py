"""The few settings a command's fast path reads before, or instead of, loading ``Settings``.

``ingestor report`` asked of a running worker is a fresh process: loading ``Settings`` (pydantic)
was a third of its time. So the values it needs (where the data dir is, and where the worker
answers) are read here from the environment, in the plain case only: no settings file
(``.ingestor.env`` or ``INGESTOR_ENV_FILE``), the embedded engine, values that need no
validation. Anything else is None, and the caller loads ``Settings``, which reads the same
variables (the defaults are these, ``settings.py`` imports them), validates, and says what is
wrong. Stdlib only, and ``platformdirs`` for the default data dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_WEB_HOST", "DEFAULT_WEB_PORT", "PlainLocal", "default_data_dir", "env_file"]

DEFAULT_WEB_HOST = "127.0.0.1"  # Faust binds 0.0.0.0 by default; we do not
DEFAULT_WEB_PORT = 6066


def env_file() -> str:
    """The settings file ``Settings`` reads, relative to the working directory."""
    return os.environ.get("INGESTOR_ENV_FILE", ".ingestor.env")


def default_data_dir() -> Path:
    """The platform's user data dir (~/.local/share/ingestor on Linux), whatever the cwd."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("ingestor", appauthor=False))


@dataclass(frozen=True, slots=True)
class PlainLocal:
    """The embedded stack's data dir and the address of its worker's HTTP views, as
    ``Settings`` would read them."""

    data_dir: Path
    web_host: str
    web_port: int

    @classmethod
    def read(cls) -> PlainLocal | None:
        """From ``INGESTOR_DATA_DIR``, ``INGESTOR_WEB_HOST`` and ``INGESTOR_WEB_PORT`` (names
        matched without case, as ``Settings`` does); None unless the case is plain."""
        if os.path.exists(env_file()):
            return None
        env = {name.lower(): value for name, value in os.environ.items()}
        if "ingestor_clickhouse_url" in env:  # a server, or a chdb path of its own
            return None
        data_dir, host = env.get("ingestor_data_dir"), env.get("ingestor_web_host")
        port = env.get("ingestor_web_port", str(DEFAULT_WEB_PORT))
        if data_dir == "" or host == "" or not (port.isascii() and port.isdigit()):
            return None
        if not 0 <= int(port) <= 65535:
            return None
        return cls(
            data_dir=default_data_dir() if data_dir is None else Path(data_dir),
            web_host=DEFAULT_WEB_HOST if host is None else host,
            web_port=int(port),
        )
