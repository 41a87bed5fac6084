"""The probes ``/health`` runs: each failure becomes a reason, never an exception."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

from yarl import URL

from ingestor.worker.views import _broker_error, _clickhouse_error


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_broker_probe_names_each_unreachable_server_and_passes_on_one_listening() -> None:
    async def probe() -> tuple[str | None, str | None]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        dead = URL(f"kafka://127.0.0.1:{closed_port()}")
        async with server:
            down = await _broker_error([dead])
            up = await _broker_error([dead, URL(f"kafka://127.0.0.1:{port}")])
        return down, up

    down, up = asyncio.run(probe())
    assert down is not None and "127.0.0.1:" in down
    assert up is None


class Engine:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def query(self, sql: str) -> list[Any]:
        assert sql == "SELECT 1"
        if self.error is not None:
            raise self.error
        return [(1,)]


def test_clickhouse_probe_reports_the_failure() -> None:
    ok = SimpleNamespace(ch=Engine(None))
    bad = SimpleNamespace(ch=Engine(ConnectionRefusedError("refused\nmore")))
    assert asyncio.run(_clickhouse_error(ok)) is None  # type: ignore[arg-type]
    error = asyncio.run(_clickhouse_error(bad))  # type: ignore[arg-type]
    assert error is not None and error == "ConnectionRefusedError: refused"
