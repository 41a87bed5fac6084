"""Hand-built transcript corpora, the ``Entry`` each line becomes, and a runner for the binary.

Lines are written so that ccusage's acceptance and dedup cannot matter: unique message and
request ids, valid versions, every line with ``costUSD`` (run in ``--mode display``, so the cost
is that number and no price table is involved). The ``Entry`` is computed from the line dict
here, independently of the ingestor's own line parser.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from ingestor.corpus._lines import MODELS
from ingestor.usage.entry import Entry


@dataclass(frozen=True)
class Line:
    path: str  # relative to projects/, e.g. "proj-a/sess-1.jsonl"
    data: dict[str, Any]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def line(
    path: str,
    n: int,
    moment: datetime,
    *,
    model: str,
    tokens: tuple[int, int, int, int],
    cost: str,
    fast: bool = False,
    split: tuple[int, int] | None = None,
    version: str = "2.0.14",
    limit_reset_s: int | None = None,
) -> Line:
    usage: dict[str, Any] = {
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "cache_creation_input_tokens": tokens[2],
        "cache_read_input_tokens": tokens[3],
    }
    if fast:
        usage["speed"] = "fast"
    if split is not None:
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": split[0],
            "ephemeral_1h_input_tokens": split[1],
        }
    session = PurePosixPath(path).parts[-3 if "/subagents/" in path else -1].removesuffix(".jsonl")
    data = {
        "timestamp": stamp(moment),
        "sessionId": session,
        "version": version,
        "requestId": f"req_{n:05d}",
        "costUSD": float(cost),
        "message": {"id": f"msg_{n:05d}", "model": model, "usage": usage},
    }
    if limit_reset_s is not None:  # an API error line announcing the usage-limit reset
        data["isApiErrorMessage"] = True
        data["message"]["content"] = [
            {"type": "text", "text": f"Claude AI usage limit reached|{limit_reset_s}"}
        ]
    return Line(path, data)


def entry_of(item: Line) -> Entry:
    """The counted entry ccusage makes of one accepted, unduplicated line."""
    data = item.data
    usage = data["message"]["usage"]
    model: str | None = data["message"]["model"]
    if model == "<synthetic>":
        model = None
    elif model is not None and usage.get("speed") == "fast":
        model += "-fast"
    split = usage.get("cache_creation")
    creation = (
        split["ephemeral_5m_input_tokens"] + split["ephemeral_1h_input_tokens"]
        if split is not None
        else usage["cache_creation_input_tokens"]
    )
    parts = PurePosixPath(item.path).parts
    if len(parts) == 2:
        session_id, project_path = parts[1].removesuffix(".jsonl"), parts[0]
    else:  # <project...>/<session>/subagents/<agent>.jsonl
        session_id, project_path = parts[-3], "/".join(parts[:-3])
    moment = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
    return Entry(
        timestamp_ms=round(moment.timestamp() * 1000),
        project=parts[0],
        session_id=session_id,
        project_path=project_path,
        model=model,
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_creation_tokens=creation,
        cache_read_tokens=usage["cache_read_input_tokens"],
        cost=Decimal(str(data["costUSD"])),
        version=data.get("version"),
        usage_limit_reset_ms=_limit_reset_ms(data),
    )


def _limit_reset_ms(data: dict[str, Any]) -> int | None:
    if data.get("isApiErrorMessage") is not True:
        return None
    for block in data["message"].get("content", []):
        text = block.get("text", "")
        marker = "Claude AI usage limit reached|"
        if marker in text:
            digits = text.split(marker, 1)[1].split(" ", 1)[0]
            return int(digits) * 1000 if digits.isdigit() and int(digits) > 0 else None
    return None


def write(root: Path, lines: list[Line]) -> list[Entry]:
    """Writes the corpus under ``root/projects`` and returns its entries in ccusage's order."""
    by_file: dict[str, list[Line]] = {}
    for item in lines:
        by_file.setdefault(item.path, []).append(item)
    entries: list[Entry] = []
    # ccusage reads files sorted by their full path string, each file top to bottom.
    for rel in sorted(by_file, key=lambda rel: str(root / "projects" / rel)):
        target = root / "projects" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = by_file[rel]
        target.write_text("".join(json.dumps(r.data, separators=(",", ":")) + "\n" for r in rows))
        entries.extend(entry_of(r) for r in rows)
    return entries


def run(binary: Path, root: Path, kind: str, tz: str, *flags: str) -> Any:
    """``ccusage claude <kind> --json`` over the corpus at ``root``."""
    done = subprocess.run(
        [str(binary), "claude", kind, "--json", "--offline", "--mode", "display", "-z", tz, *flags],
        env={**os.environ, "CLAUDE_CONFIG_DIR": str(root), "NO_COLOR": "1"},
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def mixed_corpus(seed: int = 7, start: datetime | None = None) -> list[Line]:
    """~150 lines over ~40 days: 3 projects, a subagent file, synthetic and fast lines,
    cache-creation splits, entries near midnight in UTC and New York, and multi-hour silences."""
    rng = random.Random(seed)
    moment = start or datetime(2025, 9, 1, 3, 17, 5, 123000, tzinfo=UTC)
    files = [
        "proj-a/sess-a1.jsonl",
        "proj-a/sess-a2.jsonl",
        "proj-b/sess-b1.jsonl",
        "proj-b/sess-b1/subagents/agent-x.jsonl",
        "proj-c/sess-c1.jsonl",
    ]
    out: list[Line] = []
    for n in range(150):
        step = rng.choice(
            [
                timedelta(minutes=rng.randint(1, 40)),
                timedelta(hours=rng.randint(1, 4), minutes=rng.randint(0, 59)),
                timedelta(hours=rng.randint(5, 30), seconds=rng.randint(0, 3599)),
            ]
        )
        moment += step
        if n % 17 == 0:  # land just around midnight UTC (evening in New York)
            moment = moment.replace(hour=23, minute=59, second=59, microsecond=999000)
        if n % 23 == 0:  # just after midnight New York (04:00/05:00 UTC)
            moment = moment.replace(hour=4, minute=0, second=0, microsecond=1000)
        model = "<synthetic>" if n % 29 == 0 else rng.choice(MODELS)
        tokens = (
            rng.randint(0, 3000),
            rng.randint(0, 2000),
            rng.randint(0, 5000),
            rng.randint(0, 20000),
        )
        split = None
        if n % 7 == 0:
            split = (rng.randint(0, 500), rng.randint(0, 500))
        cost = f"{rng.randint(0, 250000) / 100000:.5f}"
        out.append(
            line(
                rng.choice(files),
                n,
                moment,
                model=model,
                tokens=tokens,
                cost=cost,
                fast=n % 11 == 0 and model != "<synthetic>",
                split=split,
                version=rng.choice(["1.0.88", "2.0.14", "2.0.37"]),
            )
        )
    return out


def edge_corpus() -> list[Line]:
    """Few lines, each placed to pin one rule: cost ties (binary-exact costs), a window that
    starts before the gap preceding it, a gap starting exactly at the next window, a zero-token
    session, a usage-limit line, and an out-of-order timestamp in a later file."""
    sonnet, opus, haiku = MODELS[0], MODELS[2], MODELS[4]
    t = datetime(2025, 10, 6, 10, 30, tzinfo=UTC)  # a Monday
    return [
        # Day 1: haiku then sonnet, equal cost; opus dearer.
        line("p1/s1.jsonl", 1, t, model=haiku, tokens=(10, 1, 0, 0), cost="0.25"),
        line(
            "p1/s1.jsonl",
            2,
            t + timedelta(minutes=5),
            model=sonnet,
            tokens=(20, 2, 0, 0),
            cost="0.25",
        ),
        line(
            "p1/s1.jsonl", 3, t + timedelta(minutes=9), model=opus, tokens=(30, 3, 0, 0), cost="1.5"
        ),
        # 5h15m later: the next window starts at 15:00, before the gap (15:30).
        line(
            "p1/s1.jsonl",
            4,
            t + timedelta(hours=5, minutes=24),
            model=sonnet,
            tokens=(5, 5, 5, 5),
            cost="0.5",
        ),
        # Day 2: sonnet then haiku, equal cost (the reverse first-seen order).
        line(
            "p2/s2.jsonl", 5, t + timedelta(days=1), model=sonnet, tokens=(7, 0, 0, 0), cost="0.125"
        ),
        line(
            "p2/s2.jsonl",
            6,
            t + timedelta(days=1, minutes=1),
            model=haiku,
            tokens=(8, 0, 0, 0),
            cost="0.125",
        ),
        # Exactly 5h + 1ms after the previous entry: gap and window both start on the hour.
        line(
            "p2/s2.jsonl",
            7,
            datetime(2025, 10, 7, 11, 0, tzinfo=UTC),
            model=opus,
            tokens=(1, 1, 1, 1),
            cost="0.75",
        ),
        line(
            "p2/s2.jsonl",
            8,
            datetime(2025, 10, 7, 16, 0, 0, 1000, tzinfo=UTC),
            model=opus,
            tokens=(1, 1, 1, 1),
            cost="0.75",
        ),
        # A session of equal cost to s3 (ties keep first-seen order), one with no tokens.
        line("p3/s3.jsonl", 9, t + timedelta(days=3), model=sonnet, tokens=(1, 0, 0, 0), cost="2"),
        line(
            "p3/s4.jsonl",
            10,
            t + timedelta(days=3, hours=1),
            model=sonnet,
            tokens=(1, 0, 0, 0),
            cost="2",
        ),
        line(
            "p3/s5.jsonl",
            11,
            t + timedelta(days=3, hours=2),
            model=sonnet,
            tokens=(0, 0, 0, 0),
            cost="0",
        ),
        # Usage-limit error line (synthetic, no tokens) inside a window.
        line(
            "p3/s3.jsonl",
            12,
            t + timedelta(days=3, minutes=30),
            model="<synthetic>",
            tokens=(0, 0, 0, 0),
            cost="0",
            limit_reset_s=int((t + timedelta(days=3, hours=4)).timestamp()),
        ),
        # Earlier than everything in its window, but in a file read later.
        line(
            "p9/late.jsonl",
            13,
            t + timedelta(days=3, minutes=-20),
            model=haiku,
            tokens=(3, 3, 3, 3),
            cost="0.0625",
        ),
        # Next week, the same models in another order, for weekly/monthly merging.
        line(
            "p1/s6.jsonl", 14, t + timedelta(days=8), model=opus, tokens=(2, 2, 0, 0), cost="0.25"
        ),
        line(
            "p1/s6.jsonl",
            15,
            t + timedelta(days=8, minutes=2),
            model=haiku,
            tokens=(2, 2, 0, 0),
            cost="0.25",
        ),
        line(
            "p1/s6.jsonl", 16, t + timedelta(days=9), model=sonnet, tokens=(2, 2, 0, 0), cost="0.25"
        ),
    ]
