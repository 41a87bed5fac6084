"""The few settings a command's fast path reads before, or instead of, loading ``Settings``.

``ingestor report`` asked of a running worker is a fresh process: loading ``Settings`` (pydantic)
was a third of its time. So the values it needs (where the data dir is, and where the worker
answers) are read here from the environment, in the plain case only: no settings file
(``.ingestor.env`` or ``INGESTOR_ENV_FILE``), the embedded engine, values that need no
validation. Anything else is None, and the caller loads ``Settings``, which reads the same
variables (the defaults are these, ``settings.py`` imports them), validates, and says what is
wrong. The engine's address (``ClickHouseTarget``) lives here too, so that opening the engine
imports no pydantic either (``ingestor report`` building its answer: ~0.15 s of ~0.8).
Stdlib only, and ``platformdirs`` for the default data dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from ingestor.errors import ConfigError

__all__ = [
    "DEFAULT_WEB_HOST",
    "DEFAULT_WEB_PORT",
    "ENGINE_DIR",
    "ClickHouseTarget",
    "PlainLocal",
    "Secret",
    "default_data_dir",
    "env_file",
]

DEFAULT_WEB_HOST = "127.0.0.1"  # Faust binds 0.0.0.0 by default; we do not
DEFAULT_WEB_PORT = 6066
ENGINE_DIR = "clickhouse"  # the embedded engine's files, under the data dir


def env_file() -> str:
    """The settings file ``Settings`` reads, relative to the working directory."""
    return os.environ.get("INGESTOR_ENV_FILE", ".ingestor.env")


def default_data_dir() -> Path:
    """The platform's user data dir (~/.local/share/ingestor on Linux), whatever the cwd."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("ingestor", appauthor=False))


class Secret:
    """A password as pydantic's ``SecretStr`` holds one (never shown; ``get_secret_value``
    reads it), without importing pydantic here."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ClickHouseTarget:
    """A parsed ``clickhouse://user:pass@host:port/db`` or ``chdb:///path`` URL.

    ``chdb+tcp://:KEY@host:port/db`` (kind ``shared``): a chdb directory that another process
    owns and shares over loopback (``ingestor.local.chdb_share``), for several workers on one
    machine without a server; the password is the share's key.
    """

    kind: Literal["server", "chdb", "shared"]
    database: str
    path: Path | None = None  # chdb data directory
    host: str = "localhost"
    port: int = 9000
    user: str = "default"
    password: Secret = Secret("")
    secure: bool = False
    # A server's cluster (INGESTOR_CLICKHOUSE_CLUSTER): migrations run ON CLUSTER with
    # Replicated/Distributed tables, inserts into Distributed tables are synchronous.
    cluster: str | None = None

    @classmethod
    def embedded(cls, data_dir: Path) -> ClickHouseTarget:
        """The embedded engine (chdb) under ``data_dir``: the default of ``Settings``."""
        return cls(kind="chdb", database="ingestor", path=data_dir / ENGINE_DIR)

    @classmethod
    def parse(cls, url: str, *, default_path: Path) -> ClickHouseTarget:
        parts = urlsplit(url)
        if parts.scheme == "chdb":
            raw = unquote(parts.netloc + parts.path)
            path = Path(raw) if raw not in ("", "/") else default_path
            return cls(kind="chdb", database="ingestor", path=path)
        if parts.scheme == "chdb+tcp":
            return cls(
                kind="shared",
                database=parts.path.lstrip("/") or "ingestor",
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 0,
                password=Secret(unquote(parts.password or "")),
            )
        if parts.scheme in ("clickhouse", "clickhouses"):
            database = parts.path.lstrip("/") or "ingestor"
            return cls(
                kind="server",
                database=database,
                host=parts.hostname or "localhost",
                port=parts.port or (9440 if parts.scheme == "clickhouses" else 9000),
                user=unquote(parts.username or "default"),
                password=Secret(unquote(parts.password or "")),
                secure=parts.scheme == "clickhouses",
            )
        raise ConfigError(
            f"clickhouse_url: unsupported scheme {parts.scheme!r}; "
            "use clickhouse://user:pass@host:9000/db or chdb:///path/to/dir"
        )

    def __str__(self) -> str:  # never shows the password
        if self.kind == "chdb":
            return f"chdb://{self.path}"
        if self.kind == "shared":
            return f"chdb+tcp://{self.host}:{self.port}/{self.database}"
        return f"clickhouse://{self.user}@{self.host}:{self.port}/{self.database}"


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

    @property
    def clickhouse(self) -> ClickHouseTarget:
        """The embedded engine under the data dir, as ``Settings.clickhouse`` gives it here."""
        return ClickHouseTarget.embedded(self.data_dir)
