"""The corpus generator: deterministic, exact in size, and every dedup feature present."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestor.corpus._lines import _BAD_KINDS
from ingestor.corpus.generate import CorpusStats, generate, main

LINES = 12_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CorpusStats]:
    root = tmp_path_factory.mktemp("corpus")
    return root, generate(root, lines=LINES, seed=7, projects=3)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.jsonl")}


def parsed(root: Path) -> dict[Path, list[Any]]:
    out: dict[Path, list[Any]] = {}
    for path in root.rglob("*.jsonl"):
        rows: list[Any] = []
        for raw in path.read_bytes().splitlines():
            try:
                rows.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                rows.append(None)
        out[path] = rows
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert generate(a, lines=2000, seed=3) == generate(b, lines=2000, seed=3)
    generate(c, lines=2000, seed=4)
    assert files(a) == files(b)
    assert files(a) != files(c)


def test_writes_exactly_the_requested_lines(corpus: tuple[Path, CorpusStats]) -> None:
    root, stats = corpus
    data = files(root)
    assert stats.lines == LINES == sum(v.count(b"\n") for v in data.values())
    assert stats.files == len(data)
    assert stats.bytes == sum(len(v) for v in data.values())


def test_layout_is_claude_codes(corpus: tuple[Path, CorpusStats]) -> None:
    root, stats = corpus
    rel = [p.relative_to(root / "projects").parts for p in root.rglob("*.jsonl")]
    mains = [r for r in rel if len(r) == 2]
    subs = [r for r in rel if len(r) == 4]
    assert len(mains) + len(subs) == len(rel) and len({r[0] for r in rel}) == 3
    assert all(r[0].startswith("-home-dev-src-") for r in rel)
    assert all(r[2] == "subagents" and r[3].startswith("agent-") for r in subs)
    assert len(subs) == stats.subagent_files > 0


def test_every_feature_is_present(corpus: tuple[Path, CorpusStats]) -> None:
    _, s = corpus
    for name in (
        "streaming_copies",
        "exact_repeats",
        "sidechain_lines",
        "main_repeats_in_subagents",
        "sidechain_replays",
        "resumed_sessions",
        "replayed_lines",
        "no_request_id",
        "no_message_id",
        "api_errors",
        "with_cost_usd",
        "bad_lines",
    ):
        assert getattr(s, name) > 0, name
    assert 0 < s.bad_lines < LINES // 100
    assert set(s.bad_kinds) <= set(_BAD_KINDS)
    assert len(s.bad_kinds) >= 8


def test_lines_look_like_claude_codes(corpus: tuple[Path, CorpusStats]) -> None:
    root, _ = corpus
    rows = [r for rs in parsed(root).values() for r in rs if isinstance(r, dict)]
    kinds = {r.get("type") for r in rows}  # an odd line may lack it (ccusage counts it anyway)
    assert {"user", "assistant", "summary", "system"} <= kinds
    assistants = [r for r in rows if r.get("type") == "assistant"]
    blocks = {b["type"] for r in assistants for b in r["message"]["content"]}
    assert {"text", "thinking", "tool_use"} <= blocks
    models = {r["message"]["model"] for r in assistants}
    assert "<synthetic>" in models and len(models) > 4
    usages = [r["message"]["usage"] for r in assistants]
    assert any("cache_creation" in u for u in usages) and any(
        "cache_creation" not in u for u in usages
    )
    results = [
        r for r in rows if r.get("type") == "user" and isinstance(r["message"]["content"], list)
    ]
    assert results and all(r["message"]["content"][0]["type"] == "tool_result" for r in results)
    sizes = sorted(len(orjson.dumps(r)) for r in rows if r.get("type") in ("user", "assistant"))
    assert 500 <= sizes[len(sizes) // 2] <= 5000
    for r in assistants:
        assert r["requestId"].startswith("req_") if "requestId" in r else True
    stamps = [r["timestamp"] for r in assistants if isinstance(r.get("timestamp"), str)]
    assert sum(t.endswith("Z") for t in stamps) > 0.99 * len(stamps)  # odd lines aside


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def test_streaming_copies_grow_and_main_sessions_move_forward(
    corpus: tuple[Path, CorpusStats],
) -> None:
    root, _ = corpus
    grew = 0
    for path, rows in parsed(root).items():
        good = [r for r in rows if isinstance(r, dict)]
        if "subagents" not in path.parts:
            stamps = [_instant(r["timestamp"]) for r in good if _instant(r.get("timestamp"))]
            assert stamps == sorted(stamps), path
        outputs: dict[tuple[str, str], list[int]] = defaultdict(list)
        for r in good:
            m = r.get("message", {})
            if "usage" in m and "id" in m and "requestId" in r and not r["isSidechain"]:
                outputs[(m["id"], r["requestId"])].append(m["usage"]["output_tokens"])
        grew += sum(1 for v in outputs.values() if len(v) > 1 and v[-1] > v[0])
    assert grew > 0


def test_resumed_sessions_replay_their_parent(corpus: tuple[Path, CorpusStats]) -> None:
    root, _ = corpus
    seen: dict[tuple[str, str, str], str] = {}  # (id, request, timestamp) -> first session
    replays = 0
    for path, rows in sorted(parsed(root).items()):
        if "subagents" in path.parts:
            continue
        for r in rows:
            if isinstance(r, dict) and "id" in r.get("message", {}) and "requestId" in r:
                key = (r["message"]["id"], r["requestId"], r.get("timestamp", ""))
                first = seen.setdefault(key, r["sessionId"])
                replays += first != r["sessionId"] and r["sessionId"] == path.stem
    assert replays > 0


def test_subagents_are_sidechains_that_repeat_main_messages(
    corpus: tuple[Path, CorpusStats],
) -> None:
    root, _ = corpus
    trees = parsed(root)
    main_ids = {
        r["message"]["id"]
        for p, rows in trees.items()
        if "subagents" not in p.parts
        for r in rows
        if isinstance(r, dict) and "id" in r.get("message", {})
    }
    subs = [
        r
        for p, rows in trees.items()
        if "subagents" in p.parts
        for r in rows
        if isinstance(r, dict)
    ]
    assert subs and all(r["isSidechain"] for r in subs if "isSidechain" in r)
    assert any(r.get("message", {}).get("id") in main_ids for r in subs)


def test_cli_prints_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path), "--lines", "300", "--seed", "1"])
    assert json.loads(capsys.readouterr().out)["lines"] == 300
