"""Reproduce what a full disk does to chdb's data parts (issue #11; ARCHITECTURE, "A full disk").

Root only (it mounts a tmpfs). One run: a MergeTree table on a 128 MB tmpfs takes 600 inserts
(with deduplication tokens) while another thread fills the disk for a moment now and then, as a
neighbour's log or a download would; failed inserts are retried once the disk has room. Then it
reads the table in the same session, reopens the session (ClickHouse detaches broken parts on
load and activates the parts a broken merge was made of) and counts again:

    python tools/chdb_full_disk.py --runs 5 [--old-parts-lifetime 10]

Each run prints whether the live session could read the table, the parts detached on reopen, and
every insert whose rows are missing after it (and whether ClickHouse had confirmed that insert).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import threading
import time
from typing import Any

from chdb import session as chdb_session

INSERTS = 600


def run(seed: int, lifetime: int | None, root: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", root], check=True)
    try:
        _run(seed, lifetime, root)
    finally:
        subprocess.run(["umount", "-l", root], check=False)


def _run(seed: int, lifetime: int | None, root: str) -> None:
    session: Any = chdb_session.Session(os.path.join(root, "db"))
    extra = f", old_parts_lifetime = {lifetime}" if lifetime is not None else ""
    session.query(
        "CREATE TABLE t (k UInt64, v String) ENGINE = MergeTree ORDER BY k"
        f" SETTINGS non_replicated_deduplication_window = 1000{extra}"
    )
    rng = random.Random(seed)
    sizes = [random.Random(seed * 1000 + i).choice([100, 1000, 5000]) for i in range(INSERTS)]

    def insert(i: int) -> None:
        r = random.Random(i)  # the same rows every time: a retry is the same block
        rows = ",".join(
            f"({i * 100_000 + j},'{'x' * r.randrange(10, 100)}')" for j in range(sizes[i])
        )
        session.query(f"INSERT INTO t SETTINGS insert_deduplication_token = 'b{i}' VALUES {rows}")

    ballast, done = os.path.join(root, "ballast"), threading.Event()

    def fill() -> None:
        while not done.is_set():
            time.sleep(rng.uniform(0.2, 1.0))
            try:
                with open(ballast, "wb") as f:
                    while True:
                        f.write(b"\0" * 65536)
            except OSError:
                pass  # full
            time.sleep(rng.uniform(0.1, 0.8))
            os.remove(ballast)

    filler = threading.Thread(target=fill)
    filler.start()
    failed, confirmed = [], set()
    for i in range(INSERTS):
        try:
            insert(i)
            confirmed.add(i)
        except Exception:  # noqa: BLE001 - a full disk
            failed.append(i)
    done.set()
    filler.join()
    for i in failed:
        insert(i)
    try:
        session.query("SELECT count() FROM t", "CSV")
        live = "readable"
    except Exception as e:  # noqa: BLE001
        live = f"unreadable: {str(e)[:100]}"
    session.close()
    session = chdb_session.Session(os.path.join(root, "db"))
    detached = session.query("SELECT name FROM system.detached_parts", "CSV").data().split()
    counts = dict(
        tuple(map(int, line.split(",")))
        for line in session.query("SELECT intDiv(k, 100000), count() FROM t GROUP BY 1", "CSV")
        .data()
        .split()
    )
    lost = [
        (i, "confirmed" if i in confirmed else "failed, retried")
        for i in range(INSERTS)
        if counts.get(i, 0) != sizes[i]
    ]
    print(f"seed {seed}: {len(failed)} inserts refused; live session {live}")
    print(f"  detached on reopen: {detached}")
    print(f"  inserts missing rows after reopen: {lost or 'none'}")
    session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--old-parts-lifetime", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        for seed in range(args.seed, args.seed + args.runs):
            run(seed, args.old_parts_lifetime, root)


if __name__ == "__main__":
    main()
