"""Fault injection for the kill tests, imported at start-up by every Python child that has this
directory on ``PYTHONPATH`` (the ``up`` supervisor, its worker and watcher).

``FAULT_KILL_BEFORE=table:n``: in the worker, just before its n-th insert into ``table``, SIGKILL
the whole process group — ``ingestor up``, worker and watcher; Tansu dies with its parent. That
lands a whole-tree kill between two inserts of one batch, where a random kill rarely does.

``FAULT_FAIL_INSERTS=table:n`` with ``FAULT_FIRED=path``: ClickHouse "down" for one worker from
its n-th insert into ``table`` on, so it exits 75 and `up` restarts it (see ``_install_failures``).

``FAULT_READONLY_WHILE=path``: while ``path`` exists, the data dir acts read-only for the worker
and the watcher (tests run as root, where chmod stops no write).

``FAULT_REFUSE_WHILE=path``: while ``path`` exists, ClickHouse refuses every insert of the worker,
``INSERT … SELECT`` included (as a server that is down or out of memory does); nothing else is
touched.

``FAULT_ENOSPC_WHILE=path``: while ``path`` exists, the disk under the data dir is "full": inserts
fail as chdb reports it and checkpoint writes raise ``ENOSPC`` (the fault suite fills a real
tmpfs instead where it can mount one).

``FAULT_LOSE_BUFFER_DROPS=n``: in the worker, Faust's first n ``on_buffer_drop`` callbacks do
nothing: a partition it took out of its fetch while its stream buffer was full stays out, as
when Faust misses the moment the buffer drained. Its consumer then fetches 64 KiB a partition at
a time: else one fetch may take every record the watcher sent already, and a partition out of
the fetch would lack nothing.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import Any


def _install(spec: str) -> None:
    import ingestor.clickhouse.engine as engine

    table, _, nth = spec.partition(":")
    wanted = int(nth or "1")
    seen = 0
    opened = engine.open_clickhouse

    def open_clickhouse(target: Any) -> Any:
        ch = opened(target)
        insert = ch.insert

        def faulty(name: str, rows: Any, **kwargs: Any) -> None:
            nonlocal seen
            if name == table and "worker" in sys.argv:
                seen += 1
                if seen >= wanted:
                    os.killpg(os.getpgid(0), signal.SIGKILL)
            insert(name, rows, **kwargs)

        ch.insert = faulty
        return ch

    engine.open_clickhouse = open_clickhouse


if os.environ.get("FAULT_KILL_BEFORE"):
    _install(os.environ["FAULT_KILL_BEFORE"])


def _install_failures(spec: str, fired: str) -> None:
    """From the n-th insert into ``table`` on, every insert of the worker fails, until the
    process ends; ``fired`` (a path) is created when it starts, and a worker that finds it there
    is left alone: ClickHouse is "back" for the restarted worker."""
    import ingestor.clickhouse.engine as engine
    from ingestor.errors import StorageError

    table, _, nth = spec.partition(":")
    wanted = int(nth or "1")
    seen = 0
    failing = False
    opened = engine.open_clickhouse

    def open_clickhouse(target: Any) -> Any:
        ch = opened(target)
        insert = ch.insert

        def faulty(name: str, rows: Any, **kwargs: Any) -> None:
            nonlocal seen, failing
            if "worker" in sys.argv and not failing and name == table:
                seen += 1
                if seen >= wanted and not os.path.exists(fired):
                    failing = True
                    open(fired, "w").close()
            if failing:
                raise StorageError(f"injected failure of an insert into {name}")
            insert(name, rows, **kwargs)

        ch.insert = faulty
        return ch

    engine.open_clickhouse = open_clickhouse


if os.environ.get("FAULT_FAIL_INSERTS"):
    _install_failures(os.environ["FAULT_FAIL_INSERTS"], os.environ["FAULT_FIRED"])


def _install_while(flag: str, insert_error: str, write_errno: int | None) -> None:
    """While the file ``flag`` exists, the worker's inserts fail with ``insert_error`` and (when
    ``write_errno`` is given) the watcher's checkpoint writes with that errno."""
    import ingestor.clickhouse.engine as engine
    import ingestor.producer.checkpoint as checkpoint
    from ingestor.errors import StorageError

    opened, write = engine.open_clickhouse, checkpoint._write_atomic

    def open_clickhouse(target: Any) -> Any:
        ch = opened(target)
        insert, execute = ch.insert, ch.execute

        def faulty(name: str, rows: Any, **kwargs: Any) -> None:
            if os.path.exists(flag):
                raise StorageError(f"injected: insert into {name}: {insert_error}")
            insert(name, rows, **kwargs)

        def faulty_execute(sql: str) -> None:
            # INSERT … SELECT too: the worker's rollups of a stored batch.
            if os.path.exists(flag) and sql.lstrip().upper().startswith("INSERT"):
                raise StorageError(f"injected: {sql.strip()[:40]}: {insert_error}")
            execute(sql)

        ch.insert, ch.execute = faulty, faulty_execute
        return ch

    def write_atomic(path: Any, data: bytes) -> None:
        if write_errno is not None and os.path.exists(flag):
            raise OSError(write_errno, f"{os.strerror(write_errno)} (injected)", str(path))
        write(path, data)

    engine.open_clickhouse = open_clickhouse
    checkpoint._write_atomic = write_atomic  # type: ignore[assignment]


if os.environ.get("FAULT_READONLY_WHILE"):
    # The data dir "read-only": inserts and checkpoint writes fail as without write permission.
    _install_while(
        os.environ["FAULT_READONLY_WHILE"], "Cannot open file: Permission denied", errno.EACCES
    )

if os.environ.get("FAULT_REFUSE_WHILE"):
    _install_while(os.environ["FAULT_REFUSE_WHILE"], "Connection refused", None)

if os.environ.get("FAULT_ENOSPC_WHILE"):
    _install_while(
        os.environ["FAULT_ENOSPC_WHILE"],
        "Cannot write to file: No space left on device",
        errno.ENOSPC,
    )


def _lose_buffer_drops(count: int) -> None:
    from faust.transport.consumer import Consumer

    drop = Consumer.on_buffer_drop
    lost = 0

    def on_buffer_drop(self: Any, tp: Any) -> None:
        nonlocal lost
        if tp in self._buffered_partitions and lost < count:
            lost += 1
            sys.stderr.write(f"FAULT: lost the buffer drop of {tp}\n")
            return
        drop(self, tp)

    Consumer.on_buffer_drop = on_buffer_drop  # type: ignore[method-assign]

    import aiokafka

    init = aiokafka.AIOKafkaConsumer.__init__

    def small_fetches(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["max_partition_fetch_bytes"] = 64 * 1024
        init(self, *args, **kwargs)

    aiokafka.AIOKafkaConsumer.__init__ = small_fetches  # type: ignore[method-assign]


if os.environ.get("FAULT_LOSE_BUFFER_DROPS") and "worker" in sys.argv:
    _lose_buffer_drops(int(os.environ["FAULT_LOSE_BUFFER_DROPS"]))
