"""``python -m bench.streaming``: line -> stored latency under a sustained append rate.

Issue #9's streaming target: p99 line -> queryable <= 1 s at 5k lines/s appended to live files.
``ingestor up`` (the real one: Tansu, watcher, worker, chdb) watches a fresh tree; a writer
appends assistant usage lines to ``--files`` live session files at ``--rate`` lines/s for
``--seconds``, in 10 ms ticks (one write per file and tick), and a poller reads the worker's
``/stats/`` every 20 ms. A line is *stored* when ClickHouse confirmed its insert (the worker
counts it then, and a query sees it from then on).

Latency is counted, not traced: the n-th line written is taken as stored when the worker's count
reaches n. Within a file lines are stored in order; across files a later line may be stored
first, so a single line's delay can be off by the spread between files, not the distribution's
shape. The poll period (20 ms) bounds the resolution. Figures only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.measure import interrupt
from ingestor.local.stack import free_port, wait_ready, worker_stats

__all__ = ["main"]

TICK_S = 0.01
POLL_S = 0.02


def _line(session: str, n: int) -> bytes:
    """One assistant line with usage, unique message and request ids."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {
        "type": "assistant",
        "timestamp": now,
        "sessionId": session,
        "uuid": str(uuid.uuid4()),
        "cwd": "/work/bench",
        "version": "2.0.30",
        "requestId": f"req_{session[:8]}_{n}",
        "message": {
            "id": f"msg_{session[:8]}_{n}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "ok"}],
            "usage": {
                "input_tokens": 3,
                "output_tokens": 7,
                "cache_creation_input_tokens": 11,
                "cache_read_input_tokens": 13,
            },
        },
    }
    return orjson.dumps(body) + b"\n"


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__)
    p.add_argument("--rate", type=int, default=5000, help="lines appended per second (5000)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to append (30)")
    p.add_argument("--files", type=int, default=8, help="live session files (8)")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for `up`, e.g. INGESTOR_BATCH_MAX_AGE_S=0.3 (repeatable)",
    )
    args = p.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    project = scratch / "claude" / "projects" / "-work-bench"
    project.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    env.update(
        INGESTOR_DATA_DIR=str(scratch / "data"),
        INGESTOR_WEB_PORT=str(port),
        INGESTOR_WEB_HOST="127.0.0.1",
    )
    env.update(dict(item.split("=", 1) for item in args.env))
    sessions = [str(uuid.uuid4()) for _ in range(args.files)]
    files = [(project / f"{s}.jsonl").open("ab", buffering=0) for s in sessions]
    log = (scratch / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "ingestor.cli.main", "up", str(project.parent)],
        env=env,
        cwd=scratch,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stored() -> int | None:
        counts = worker_stats("127.0.0.1", port).get("counts")
        return int(counts.get("records_stored", 0)) if isinstance(counts, dict) else None

    try:
        if not wait_ready("127.0.0.1", port, up, timeout_s=120, poll_s=0.2):
            raise SystemExit(f"ingestor up did not get ready (see {scratch / 'up.log'})")
        # Warm-up: one line a file, until stored (the watcher has every file open).
        for i, f in enumerate(files):
            f.write(_line(sessions[i], 0))
        while (stored() or 0) < args.files:
            time.sleep(0.05)
        base = stored() or 0

        polls: list[tuple[float, int]] = []
        writing = threading.Event()
        writing.set()

        def poll() -> None:
            while writing.is_set():
                count = stored()
                if count is not None:
                    polls.append((time.monotonic(), count - base))
                time.sleep(POLL_S)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        written: list[float] = []
        counters = [1] * args.files
        start = time.monotonic()
        end = start + args.seconds
        while (now := time.monotonic()) < end:
            due = int((now - start) * args.rate) - len(written)
            if due > 0:
                per = [
                    due // args.files + (1 if i < due % args.files else 0)
                    for i in range(args.files)
                ]
                for i, n in enumerate(per):
                    if n:
                        chunk = b"".join(_line(sessions[i], counters[i] + k) for k in range(n))
                        counters[i] += n
                        files[i].write(chunk)
                stamp = time.monotonic()
                written.extend([stamp] * due)
            time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
        wrote_s = time.monotonic() - start
        catch_up = time.monotonic() + 120
        while (polls[-1][1] if polls else 0) < len(written) and time.monotonic() < catch_up:
            time.sleep(0.1)
        writing.clear()
        poller.join()
    finally:
        for f in files:
            f.close()
        interrupt(up)
        log.close()

    delays: list[float] = []
    j = 0
    for i, at in enumerate(written):
        while j < len(polls) and polls[j][1] < i + 1:
            j += 1
        if j == len(polls):
            break
        delays.append(max(0.0, polls[j][0] - at))
    missing = len(written) - len(delays)
    delays.sort()
    print(f"settings: {' '.join(args.env) or 'defaults'}")
    print(
        f"streaming: {len(written):,} lines appended to {args.files} live files in {wrote_s:.1f} s "
        f"({len(written) / wrote_s:,.0f} lines/s, asked {args.rate:,})"
    )
    print(f"  line -> stored (ClickHouse confirmed), counted by the {POLL_S * 1000:.0f} ms poll:")
    for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        print(f"    {label:<4} {_percentile(delays, q) * 1000:8.0f} ms")
    target = _percentile(delays, 0.99) <= 1.0 and not missing
    print(f"  target p99 <= 1 s at 5k lines/s: {'met' if target else 'MISSED'}")
    if missing:
        print(f"  {missing:,} lines not stored within 120 s of the last append")
    print(f"  logs: {scratch / 'up.log'}, data: {scratch / 'data'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
