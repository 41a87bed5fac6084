"""One chdb directory shared by several processes: a stand-in for a ClickHouse server on loopback.

chdb admits one process per data directory, so two workers cannot both open it. ``serve()`` owns
the directory and answers the ``ClickHouse`` interface (``execute``, ``query``,
``query_columns``, ``insert``) for clients that open ``chdb+tcp://:KEY@host:port/db``
(``clickhouse/shared_engine.py``): every statement runs in the one engine, so two workers write the
same
tables, with the same idempotence and materialized-view rules, as they would on a server. Tests
and local scale-out experiments use it where no ClickHouse server is available; it is not a
server for production (one engine lock, no replication).

The wire is ``multiprocessing.connection`` (pickled calls, HMAC-authenticated with the key, bound
to loopback by default). A call's ``StorageError`` travels back to the caller as it was raised.

    python -m ingestor.local.chdb_share DIR --port 0   # prints "listening 127.0.0.1:PORT"
    # the key: $INGESTOR_CHDB_SHARE_KEY
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from ingestor.clickhouse.chdb_engine import ChdbClickHouse
from ingestor.errors import StorageError
from ingestor.plain_settings import ClickHouseTarget

__all__ = ["KEY_ENV", "METHODS", "serve"]

KEY_ENV = "INGESTOR_CHDB_SHARE_KEY"
METHODS = frozenset({"execute", "query", "query_columns", "insert"})


def serve(path: Path, *, database: str = "ingestor", host: str = "127.0.0.1", port: int = 0,
          authkey: bytes) -> None:  # fmt: skip
    """Open chdb at ``path`` and answer clients until killed; prints the address once listening."""
    engine = ChdbClickHouse(ClickHouseTarget(kind="chdb", database=database, path=path))
    with Listener((host, port), authkey=authkey) as listener:
        bound_host, bound_port = listener.address
        print(f"listening {bound_host}:{bound_port}", flush=True)
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError, AuthenticationError):  # a client without the key
                continue
            threading.Thread(target=_client, args=(engine, conn), daemon=True).start()


def _client(engine: ChdbClickHouse, conn: Connection) -> None:
    with conn:
        while True:
            try:
                method, args, kwargs = conn.recv()
            except (EOFError, OSError):
                return
            reply: tuple[str, Any]
            if method not in METHODS:
                reply = ("error", StorageError(f"chdb share: no method {method!r}"))
            else:
                try:
                    reply = ("ok", getattr(engine, method)(*args, **kwargs))
                except StorageError as exc:
                    reply = ("error", exc)
            try:
                conn.send(reply)
            except (OSError, ValueError):
                return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestor.local.chdb_share")
    parser.add_argument("path", type=Path, help="the chdb data directory")
    parser.add_argument("--database", default="ingestor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    key = os.environ.get(KEY_ENV, "")
    if not key:
        print(f"set {KEY_ENV}: clients authenticate with it", file=sys.stderr)
        return 2
    serve(args.path, database=args.database, host=args.host, port=args.port, authkey=key.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
