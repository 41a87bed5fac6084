"""``python -m bench.sdk``: what ``ingestor.sdk`` costs the app's thread, broker up and down.

Figures, each printed as p50 / p99 / max µs per tracked call on the calling thread:

* a prompt call (``with tracker.prompt(model, prompt=text) as c: c.response(...)``, empty body),
  a decorated tool call, an agent step inside a run, and ``track(dict)``;
* with the broker **up** (an embedded Tansu, the events topic created; the sender thread really
  sends meanwhile) and **down** (a closed port: the sender retries with backoff and the queue
  fills, its bound set above the calls made so the queueing path is measured), and with the
  queue **full** (the drop path);
* ``flush(1.0)`` with the broker down: how long it took to return;
* the floor: the same loop around a bare dict and ``list.append``, no SDK;
* the import: wall time of ``import ingestor.sdk`` in a fresh interpreter and what it loads;
* beside them, the Langfuse SDK when it is installed (``pip install langfuse``; optional, not a
  dependency): its import time, one generation span (``start_as_current_observation(
  as_type="generation")`` + ``update(output=..., usage_details=...)``) back-to-back and paced with
  its endpoint down, and how long its ``flush()`` blocked (bounded at 30 s), each in a fresh
  interpreter (``--langfuse-probe``) so its exit-time flush cannot hold this one up.

Figures only: nothing fails on a slow run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Summarise the customer's last three orders and flag anything unusual. " * 40


def measure(call: Callable[[], None], n: int, pace_s: float) -> tuple[float, float, float]:
    """p50, p99 and max µs of ``call`` over ``n`` runs (after a warm-up), ``pace_s`` apart (the
    app doing other work, its thread asleep or in I/O, between tracked calls)."""
    for _ in range(min(n, 1000)):
        call()
    samples = []
    clock = time.perf_counter_ns
    sleep = time.sleep
    for _ in range(n):
        if pace_s:
            sleep(pace_s)
        t0 = clock()
        call()
        samples.append(clock() - t0)
    samples.sort()
    return samples[n // 2] / 1e3, samples[int(n * 0.99)] / 1e3, samples[-1] / 1e3


def workload(tracker: object) -> dict[str, Callable[[], None]]:
    from ingestor.sdk import Tracker

    assert isinstance(tracker, Tracker)

    def prompt() -> None:
        with tracker.prompt("claude-sonnet-4", prompt=PROMPT) as call:
            call.response("All three orders shipped.", tokens_input=812, tokens_output=204)

    @tracker.tool("search_orders")
    def search() -> None:
        return None

    run = tracker.run("bench-run")
    run.__enter__()

    def step() -> None:
        with tracker.step("plan", step_type="plan"):
            pass

    def track() -> None:
        tracker.track({"event_type": "performance_alert", "metric": "p99", "threshold": 1.0,
                       "actual_value": 2.0})  # fmt: skip

    return {"prompt call": prompt, "tool call (decorator)": search, "agent step": step,
            "track(dict)": track}  # fmt: skip


def run_case(
    label: str, bootstrap: str, topic: str, n: int, *, max_queue: int, pace_s: float = 0.0
) -> list[str]:
    from ingestor.sdk import Tracker

    tracker = Tracker(bootstrap, project_id="bench", user_id="u", topic=topic, max_queue=max_queue)
    rows = []
    gc.collect()
    for name, call in workload(tracker).items():
        p50, p99, worst = measure(call, n, pace_s)
        rows.append(f"{label:<24} {name:<22} {p50:8.2f} {p99:8.2f} {worst:9.1f}")
    stats = tracker.stats()
    t0 = time.monotonic()
    flushed = tracker.flush(30.0 if label.startswith("broker up") else 1.0)
    took = time.monotonic() - t0
    rows.append(
        f"{label:<24} flush -> {flushed} in {took:.3f} s; queued={stats.queued} "
        f"dropped={stats.dropped} then {tracker.stats()}"
    )
    tracker.close(0.5)
    return rows


def floor_rows(n: int, paced: int, pace_s: float, rate: str) -> list[str]:
    """The machine's floor: a dict of eight fields appended to a list, no SDK at all. On a
    paced thread (asleep between calls) every call starts on cold caches; this shows how much."""
    sink: list[dict[str, object]] = []

    def bare() -> None:
        sink.append({"event_type": "tool_call", "project_id": "bench", "user_id": "u",
                     "env": "production", "tool_name": "x", "timestamp": time.time(),
                     "latency_ms": 0, "status": "success"})  # fmt: skip

    rows = []
    for label, count, pace in (
        ("no SDK, back-to-back", n, 0.0),
        (f"no SDK, {rate}", paced, pace_s),
    ):
        p50, p99, worst = measure(bare, count, pace)
        rows.append(f"{label:<24} {'dict + list.append':<22} {p50:8.2f} {p99:8.2f} {worst:9.1f}")
    return rows


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def import_figures() -> list[str]:
    code = (
        "import sys, time; before = set(sys.modules); t = time.perf_counter(); "
        "import ingestor.sdk; took = time.perf_counter() - t; "
        "new = sorted({m.split('.')[0] for m in set(sys.modules) - before}); "
        "heavy = [m for m in ('faust', 'chdb', 'pydantic', 'aiokafka', 'asyncio') "
        "if m in sys.modules]; "
        "print(f'{took * 1000:.1f} ms; loads: {\" \".join(new)}; heavy: {heavy or None}')"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        for _ in range(3)
    ]
    return [f"import ingestor.sdk: {r.stdout.strip() or r.stderr.strip()[-300:]}" for r in runs]


def langfuse_probe(n: int, paced: int, pace_s: float) -> None:
    """In a fresh interpreter: Langfuse's import time, its generation span p50/p99/max with the
    endpoint down, and its ``flush()`` time; printed as rows, then exits without its atexit."""
    import os
    import threading

    t0 = time.perf_counter()
    from langfuse import Langfuse  # type: ignore[import-not-found, unused-ignore]

    imported = time.perf_counter() - t0
    from importlib.metadata import version

    client = Langfuse(
        public_key="pk-lf-bench", secret_key="sk-lf-bench",
        base_url=f"http://127.0.0.1:{closed_port()}",
    )  # fmt: skip

    def generation() -> None:
        with client.start_as_current_observation(
            as_type="generation", name="chat", model="claude-sonnet-4", input=PROMPT
        ) as gen:
            gen.update(output="All three orders shipped.",
                       usage_details={"input": 812, "output": 204})  # fmt: skip

    label = f"langfuse {version('langfuse')}"
    rows = [f"{label}: import {imported * 1000:.1f} ms"]
    for case, count, pace in (("back-to-back", n, 0.0), (f"{1 / pace_s:.0f}/s", paced, pace_s)):
        p50, p99, worst = measure(generation, count, pace)
        rows.append(f"{'langfuse, down, ' + case:<24} {'generation span':<22} "
                    f"{p50:8.2f} {p99:8.2f} {worst:9.1f}")  # fmt: skip
    flusher = threading.Thread(target=client.flush, daemon=True)
    t0 = time.monotonic()
    flusher.start()
    flusher.join(30.0)
    took = time.monotonic() - t0
    state = "still blocked" if flusher.is_alive() else "returned"
    rows.append(f"{label}: flush() with the endpoint down {state} after {took:.1f} s")
    print("\n".join(rows), flush=True)
    os._exit(0)  # its atexit flush would block again


def langfuse_rows(n: int, paced: int, pace_s: float) -> list[str]:
    """Langfuse's figures from a fresh interpreter, or why there are none."""
    import importlib.util

    if importlib.util.find_spec("langfuse") is None:
        return ["langfuse: not installed (pip install langfuse), not measured"]
    args = ["--langfuse-probe", "--calls", str(n), "--paced-calls", str(paced),
            "--pace-ms", str(pace_s * 1000)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.sdk", *args], capture_output=True, text=True, cwd=ROOT,
        timeout=600,
    )  # fmt: skip
    out = done.stdout.strip().splitlines()
    return out or [f"langfuse: the probe failed: {done.stderr.strip()[-300:]}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sdk", description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="back-to-back calls per figure")
    parser.add_argument("--paced-calls", type=int, default=2_000, help="paced calls per figure")
    parser.add_argument("--pace-ms", type=float, default=1.0, help="between paced calls")
    parser.add_argument("--no-langfuse", action="store_true", help="skip Langfuse's figures")
    parser.add_argument("--langfuse-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.langfuse_probe:
        langfuse_probe(args.calls, args.paced_calls, args.pace_ms / 1000)

    from ingestor.kafka.topics import create_topics
    from ingestor.local.tansu import TansuBroker
    from ingestor.settings import Settings

    n, paced, pace = args.calls, args.paced_calls, args.pace_ms / 1000
    rate = f"{1 / pace:.0f}/s" if pace else ""
    settings = Settings(topic_prefix="bench-sdk.")
    rows: list[str] = floor_rows(n, paced, pace, rate)
    with TansuBroker() as broker:
        asyncio.run(create_topics(settings, broker.bootstrap))
        topic, address = settings.topic("events"), broker.bootstrap
        rows += run_case("broker up, back-to-back", address, topic, n, max_queue=10 * n)
        rows += run_case(f"broker up, {rate}", address, topic, paced, max_queue=10 * n,
                         pace_s=pace)  # fmt: skip
    down = f"127.0.0.1:{closed_port()}"
    rows += run_case("broker down, back-to-back", down, "x.events", n, max_queue=10 * n)
    rows += run_case(f"broker down, {rate}", down, "x.events", paced, max_queue=10 * n,
                     pace_s=pace)  # fmt: skip
    rows += run_case("queue full, back-to-back", down, "x.events", n, max_queue=1)
    print(f"{'case':<24} {'call':<22} {'p50 µs':>8} {'p99 µs':>8} {'max µs':>9}")
    if not args.no_langfuse:
        rows += langfuse_rows(min(n, 5000), paced, pace)
    for row in (*rows, *import_figures()):
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
