"""A MergeTree table's deduplication log: release the tokens of a part chdb detached as broken.

A non-replicated MergeTree with ``non_replicated_deduplication_window`` keeps, in
``<table dir>/deduplication_logs/deduplication_log_<n>.txt``, one record per line:
``<op>\\t<part name>\\t<block id>``, op 1 adding a block id (an insert's token, hashed) for the
part that stored it and op 2 dropping it. ClickHouse replays the files in order when it loads the
table. (The format is ClickHouse's ``MergeTreeDeduplicationLog``.)

Under a full disk chdb can commit an insert's part with empty files. Opening the data dir again,
ClickHouse detaches that part as ``broken-on-start_<name>``, and its rows are gone, but the log
still says the insert's token is stored: when the worker delivers that batch again, the insert is
"deduplicated" and dropped, for good. Appending a drop record for each block id of the parts
whose rows are gone, while the table is not loaded, lets those inserts store their rows again.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["LOG_DIR", "release", "stored_blocks"]

LOG_DIR = "deduplication_logs"
_ADD, _DROP = "1", "2"
_LOG_FILE = re.compile(r"deduplication_log_(\d+)\.txt")


def _logs(table_dir: Path) -> list[Path]:
    found = []
    for path in (table_dir / LOG_DIR).glob("deduplication_log_*.txt"):
        if match := _LOG_FILE.fullmatch(path.name):
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def stored_blocks(logs: list[Path]) -> dict[str, str]:
    """Block id -> the part that stores it, as ClickHouse reads the log (in order, drops apply)."""
    blocks: dict[str, str] = {}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            fields = line.split("\t")
            if len(fields) != 3:  # a record cut short by a crash: ClickHouse stops there too
                continue
            op, part, block = fields
            if op == _ADD:
                blocks[block] = part
            elif op == _DROP:
                blocks.pop(block, None)
    return blocks


def _blocks_of(part: str, partition: str) -> tuple[int, int] | None:
    """The block numbers ``part`` (``<partition>_<min>_<max>_<level>[_<mutation>]``) holds."""
    if not part.startswith(partition + "_"):
        return None
    fields = part[len(partition) + 1 :].split("_")
    if len(fields) not in (3, 4) or not all(f.isdigit() for f in fields):
        return None
    return int(fields[0]), int(fields[1])


def release(table_dir: Path, partition: str, low: int, high: int) -> int:
    """Append a drop record for every block id the log says a part within blocks ``low`` ..
    ``high`` of ``partition`` stores (a broken insert's part, or the inserts a lost merge was
    made of); how many. Run only while the table is not loaded (ClickHouse holds the newest
    file open and the map in memory)."""
    logs = _logs(table_dir)
    if not logs:
        return 0
    gone = []
    for block, part in stored_blocks(logs).items():
        span = _blocks_of(part, partition)
        if span is not None and low <= span[0] and span[1] <= high:
            gone.append((part, block))
    if gone:
        newest = logs[-1]
        text = newest.read_bytes()
        with newest.open("ab") as f:
            if text and not text.endswith(b"\n"):
                f.write(b"\n")  # a crash cut the last record: start ours on a line of its own
            f.write("".join(f"{_DROP}\t{part}\t{block}\n" for part, block in sorted(gone)).encode())
    return len(gone)
