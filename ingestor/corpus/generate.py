"""Deterministic generator of realistic Claude Code transcript trees (tests and benchmarks).

``generate(root, lines=N, seed=S)`` writes exactly ``N`` physical lines under ``root/projects``:
``<encoded-cwd>/<session>.jsonl`` main sessions and
``<encoded-cwd>/<session>/subagents/agent-<id>.jsonl`` subagent files. The same arguments always
produce the same bytes; nothing else (clock, environment, dict order) feeds in.

Everything the dedup rule (ARCHITECTURE.md) has to get right appears: streaming copies of one
message with growing ``output_tokens`` (and some exact repeats), sidechain lines in subagent files,
subagent lines repeating main-session messages, resumed sessions replaying their parent's last
lines under the new ``sessionId``, sidechain replays (known ``message.id``, new ``requestId``),
lines without ``requestId`` or ``message.id``, ``<synthetic>`` API-error lines, ``costUSD`` on old
versions, summary-only files (no timestamp), and a small share of malformed lines.

CLI: ``python -m ingestor.corpus.generate ROOT --lines N --seed S``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestor.corpus._lines import (
    MODEL_WEIGHTS,
    MODELS,
    OLD_VERSION,
    VERSIONS,
    CorpusStats,
    Gen,
    Session,
    ts,
)

__all__ = ["CorpusStats", "generate", "main"]

_DEFAULT_START = datetime(2025, 9, 1, tzinfo=UTC)
_BRANCHES = ("main", "main", "feature/ingest", "fix/dedup", "HEAD")


def generate(
    root: Path,
    *,
    lines: int,
    seed: int = 0,
    odd_rate: float = 0.002,
    projects: int = 8,
    start: datetime = _DEFAULT_START,
    days: int = 30,
) -> CorpusStats:
    """Write a corpus of exactly ``lines`` lines under ``root/projects``; return what was written.

    Session start times are spread over ``days`` days from ``start`` (resumed sessions and long
    sessions may run past the window). Existing files under ``root`` are overwritten, not cleared.
    """
    if lines < 0 or projects < 1 or days < 1:
        raise ValueError("lines must be >= 0, projects and days >= 1")
    stats = CorpusStats()
    g = Gen(seed, lines, stats, odd_rate=odd_rate)
    r = g.rng
    dirs = []
    for i in range(projects):
        cwd = f"/home/dev/src/{g.pick(('api', 'web', 'infra', 'ml'))}-{i}.{g.between(1, 9)}"
        # Claude Code's encoding of the working directory: '/' and '.' become '-'.
        dirs.append((cwd, root / "projects" / cwd.replace("/", "-").replace(".", "-")))
    finished: list[list[Session]] = [[] for _ in range(projects)]
    t0 = int(start.timestamp() * 1000)
    while g.left > 0:
        p = g.below(projects)
        cwd, pdir = dirs[p]
        parent = g.pick(finished[p]) if finished[p] and r.random() < 0.12 else None
        if parent is None:
            version = g.pick(VERSIONS)
            s = Session(g.uid(), cwd, g.pick(_BRANCHES), version, t0 + g.below(days * 86_400_000))
        else:
            s = Session(g.uid(), cwd, parent.branch, parent.version, parent.t)
        s.model = r.choices(MODELS, MODEL_WEIGHTS)[0]
        _session(g, s, pdir, parent)
        if s.out:
            _write(pdir / f"{s.sid}.jsonl", s.out, stats)
            stats.sessions += 1
            finished[p].append(s)
    return stats


def _write(path: Path, out: list[bytes], stats: CorpusStats) -> None:
    if not out:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(out)
    path.write_bytes(data)
    stats.files += 1
    stats.lines += len(out)
    stats.bytes += len(data)


def _session(g: Gen, s: Session, pdir: Path, parent: Session | None) -> None:
    r = g.rng
    if parent is not None or r.random() < 0.05:
        g.emit(s, {"type": "summary", "summary": g.text(20, 60), "leafUuid": g.uid()})
        if parent is None and r.random() < 0.2:
            return  # a summary-only file: no timestamp, sorted last by ccusage
    if parent is not None:
        g.stats.resumed_sessions += 1
        for obj in parent.tail:  # identical ids and timestamps, the new sessionId
            g.stats.replayed_lines += g.emit(s, {**obj, "sessionId": s.sid})
        s.t = parent.t + g.between(60_000, 172_800_000)
    target = len(s.out) + g.between(40, 600)
    prev: str | None = None
    while g.left > 0 and len(s.out) < target:
        line = g.user(s, prev)
        g.emit(s, line)
        prev = _agent_loop(g, s, pdir, line["uuid"])
        if r.random() < 0.03:
            system = g.base(s, "system", prev)
            system.update(subtype="informational", content=g.text(40, 200), level="info")
            g.emit(s, system)


def _agent_loop(g: Gen, s: Session, pdir: Path | None, prev: str) -> str:
    """Assistant messages and tool results until a message calls no tool; returns the last uuid."""
    r = g.rng
    for _ in range(g.between(1, 6)):
        if r.random() < 0.005:
            _api_error(g, s, prev)
            return prev
        last, tools = _message(g, s, prev)
        prev = last["uuid"]
        for block in tools:
            if block["name"] == "Task" and pdir is not None and g.left > 0:
                _subagent(g, s, pdir, last)
            result = g.user(s, prev, block["id"])
            g.emit(s, result)
            prev = result["uuid"]
        if not tools:
            break
    return prev


def _message(g: Gen, s: Session, prev: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One assistant message as its streaming copies: one line per content block."""
    r = g.rng
    blocks = g.blocks()[:4]
    model = s.model if r.random() < 0.9 else g.pick(MODELS)
    final = g.between(len(blocks) * 8, 4000)
    first = g.assistant(s, model, blocks[:1], final // len(blocks))
    message = first["message"]
    if r.random() < 0.02:
        del first["requestId"]
    if r.random() < 0.01:
        del message["id"]
    elif "requestId" in first:
        s.known.append((message["id"], first["requestId"]))
    line = first
    for i, block in enumerate(blocks):
        if i:
            s.t += g.between(30, 1500)
            usage = {**message["usage"], "output_tokens": final * (i + 1) // len(blocks)}
            line = {**line, "parentUuid": line["uuid"], "uuid": g.uid(), "timestamp": ts(s.t)}
            line["message"] = {**message, "content": [block], "usage": usage}
        else:
            line["parentUuid"] = prev
        if s.version == OLD_VERSION:
            line["costUSD"] = _cost(line["message"]["usage"])
        g.stats.streaming_copies += g.emit(s, line) and i > 0
    # Claude Code sometimes writes the very same line twice.
    if r.random() < 0.03 and g.emit(s, line):
        g.stats.exact_repeats += 1
        g.stats.streaming_copies += 1
    return line, [b for b in blocks if b["type"] == "tool_use"]


def _cost(usage: dict[str, int]) -> float:
    # Plausible, not exact: costUSD is taken as written, whatever the pricing table says.
    tokens = (
        3 * usage["input_tokens"]
        + 15 * usage["output_tokens"]
        + 3.75 * usage["cache_creation_input_tokens"]
        + 0.3 * usage["cache_read_input_tokens"]
    )
    return round(tokens / 1e6, 8)


def _api_error(g: Gen, s: Session, prev: str) -> None:
    line = g.assistant(s, "<synthetic>", [{"type": "text", "text": "API Error: 529 Overloaded"}], 0)
    line["parentUuid"] = prev
    line["isApiErrorMessage"] = True
    del line["requestId"]
    line["message"]["id"] = g.uid()
    line["message"]["usage"] = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    g.stats.api_errors += g.emit(s, line)


def _subagent(g: Gen, main: Session, pdir: Path, task: dict[str, Any]) -> None:
    """A Task tool's subagent file: sidechain lines, repeats of main messages and replays."""
    r = g.rng
    sub = Session(main.sid, main.cwd, main.branch, main.version, main.t, sidechain=True)
    sub.model = main.model
    first = g.user(sub, None)
    g.emit(sub, first)
    prev = first["uuid"]
    if r.random() < 0.5:
        # The spawning message again, as a sidechain copy; sometimes with more output tokens,
        # which must still lose to the non-sidechain original.
        message = task["message"]
        usage = {**message["usage"], "output_tokens": message["usage"]["output_tokens"] + 7}
        grown = {**message, "usage": usage} if r.random() < 0.5 else message
        repeat = {**task, "isSidechain": True, "uuid": g.uid(), "message": grown}
        g.stats.main_repeats_in_subagents += g.emit(sub, repeat)
    if main.known and r.random() < 0.3:
        msg_id, _ = g.pick(main.known)
        replay = g.assistant(sub, sub.model, [{"type": "text", "text": g.text(200, 1500)}], 90)
        replay["message"]["id"] = msg_id
        g.stats.sidechain_replays += g.emit(sub, replay)
    for _ in range(g.between(1, 3)):
        prev = _agent_loop(g, sub, None, prev)
    main.t = sub.t
    _write(
        pdir / main.sid / "subagents" / f"agent-{g.rng.getrandbits(32):08x}.jsonl", sub.out, g.stats
    )
    g.stats.subagent_files += bool(sub.out)


def main(argv: list[str] | None = None) -> None:
    """CLI: write a corpus and print its ``CorpusStats`` as JSON (speed goes to stderr)."""
    ap = argparse.ArgumentParser(prog="python -m ingestor.corpus.generate", description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--projects", type=int, default=8)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args(argv)
    began = time.perf_counter()
    stats = generate(
        args.root, lines=args.lines, seed=args.seed, projects=args.projects, days=args.days
    )
    took = time.perf_counter() - began
    print(json.dumps(asdict(stats), indent=2))
    print(
        f"{stats.lines} lines in {took:.2f}s ({stats.lines / took:,.0f} lines/s)", file=sys.stderr
    )


if __name__ == "__main__":
    main()
