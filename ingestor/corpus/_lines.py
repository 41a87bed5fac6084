"""Line builders for the corpus generator: one Claude Code JSONL line each, from a seeded RNG.

Text is sliced from one seeded word pool, so lines carry realistic 0.5–5 KB payloads without
per-line text generation (1M lines must take seconds, not minutes). ``Gen.emit`` enforces the
exact line budget and sprinkles malformed lines (never before a file's earliest timestamp, so file
order never hinges on a line the product dead-letters).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, TypeVar

import orjson

T = TypeVar("T")

__all__ = [
    "MODELS",
    "MODEL_WEIGHTS",
    "OLD_VERSION",
    "VERSIONS",
    "CorpusStats",
    "Gen",
    "Session",
    "ts",
]

MODELS = (
    "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-20250514",
    "claude-opus-4-1-20250805",
    "claude-opus-4-20250514",
    "claude-haiku-4-5-20251001",
    "claude-3-5-haiku-20241022",
)
MODEL_WEIGHTS = (40, 25, 12, 5, 10, 8)
OLD_VERSION = "1.0.31"  # sessions of this version carry costUSD, as early Claude Code did
VERSIONS = (OLD_VERSION, "1.0.88", "2.0.14", "2.0.37")
# Weighted by repetition; Task (which spawns a subagent) is the rare one.
_TOOLS = (
    ("Bash",) * 5 + ("Read",) * 5 + ("Edit",) * 4 + ("Grep", "Glob", "Write", "TodoWrite", "Task")
)
# Lines ccusage 20.x skips (ingestor dead-letters them, naming the rule) ...
_BAD_KINDS = (
    "invalid_json", "truncated", "array", "negative_tokens", "string_tokens", "no_ts",
    "version_short", "version_word", "version_v", "sidechain_string", "null_model",
    "null_request", "spaced_usage", "float_tokens", "empty_session", "empty_request",
    "empty_message_id", "empty_model", "lowercase_z", "micro_ts", "speed_unknown", "cost_string",
    "duplicate_key", "api_error_string",
)  # fmt: skip
# ... and odd lines it counts all the same.
_ODD_KINDS = ("no_type", "cwd_number", "fast", "offset_ts", "no_millis")
_WORD_TEXT = (
    "the def return self import from class async await value error token cache session file "
    "line offset kafka partition project usage model request message stream batch worker sink "
    "query insert select where group order limit None True False if else for in while with as "
    "config settings test assert result data path json parse dedup total cost decimal"
)
_WORDS = _WORD_TEXT.split()


@dataclass
class CorpusStats:
    """What ``generate`` wrote. ``lines`` counts every physical line, malformed ones included."""

    lines: int = 0
    bytes: int = 0
    files: int = 0
    sessions: int = 0
    subagent_files: int = 0
    resumed_sessions: int = 0
    usage_lines: int = 0  # well-formed lines carrying message.usage (copies included)
    streaming_copies: int = 0  # extra lines of a message beyond its first
    exact_repeats: int = 0
    sidechain_lines: int = 0
    main_repeats_in_subagents: int = 0
    sidechain_replays: int = 0
    replayed_lines: int = 0  # lines copied into resumed sessions
    no_request_id: int = 0
    no_message_id: int = 0
    api_errors: int = 0
    with_cost_usd: int = 0
    bad_lines: int = 0
    bad_kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class Session:
    """One file being written: its identity, clock, buffered lines and what resumes replay."""

    sid: str
    cwd: str
    branch: str
    version: str
    t: int  # current time, epoch ms
    out: list[bytes] = field(default_factory=list)
    tail: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=6))
    sidechain: bool = False
    model: str = MODELS[0]
    known: list[tuple[str, str]] = field(default_factory=list)  # (message.id, requestId)


def ts(ms: int) -> str:
    """Epoch milliseconds as Claude Code writes them: ``2025-09-01T10:00:00.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class Gen:
    """All randomness of one corpus (one seeded ``Random``, fixed draw order) and its budget."""

    def __init__(
        self, seed: int, lines: int, stats: CorpusStats, *, odd_rate: float = 0.002
    ) -> None:
        self.odd_rate = odd_rate  # after a timestamped line: a malformed (70%) or odd (30%) one
        self.rng = Random(seed)
        self.rand = self.rng.random
        self.left = lines
        self.stats = stats
        words = self.rng.choices(_WORDS, k=200_000)
        for i in range(0, len(words), 13):
            words[i] += "\n"  # code-like line structure
        self.pool = " ".join(words)

    # random()-based draws: Random.randint/choice cost ~10x more, and dominate at 1M lines.
    def below(self, n: int) -> int:
        return int(self.rand() * n)

    def between(self, lo: int, hi: int) -> int:
        return lo + int(self.rand() * (hi - lo + 1))

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.rand() * len(seq))]

    def uid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def text(self, lo: int, hi: int) -> str:
        """A slice of the pool, skewed towards ``lo`` (mean lo + (hi - lo) / 3) like real text."""
        u = self.rand()
        n = lo + int((hi - lo) * u * u)
        at = self.below(len(self.pool) - n)
        return self.pool[at : at + n]

    def emit(self, s: Session, obj: dict[str, Any], *, raw: bytes | None = None) -> bool:
        """Append one line to ``s`` unless the line budget is spent; False when it was."""
        if self.left <= 0:
            return False
        self.left -= 1
        if raw is not None:
            s.out.append(raw + b"\n")
            return True
        s.out.append(orjson.dumps(obj) + b"\n")
        self.stats.sidechain_lines += s.sidechain
        if not s.sidechain:
            s.tail.append(obj)
        message = obj.get("message")
        if isinstance(message, dict) and "usage" in message:
            st = self.stats
            st.usage_lines += 1
            st.no_request_id += "requestId" not in obj
            st.no_message_id += "id" not in message
            st.with_cost_usd += "costUSD" in obj
        # Only after a timestamped line (and bad lines' clocks run on): a file's earliest
        # timestamp, which orders files for dedup, never comes from a line the product rejects.
        if self.rand() < self.odd_rate and "timestamp" in obj:
            self.emit_bad(s, obj)
        return True

    def emit_bad(self, s: Session, template: dict[str, Any]) -> None:
        if self.rand() < 0.3:
            self.emit_odd(s)
            return
        kind = self.pick(_BAD_KINDS)
        bad = self.assistant(s, self.pick(MODELS), [{"type": "text", "text": "x"}], 1)
        usage = bad["message"]["usage"]
        raw: bytes | None = None
        if kind == "invalid_json":
            raw = b'{"type": "assistant", "message": {oops'
        elif kind == "truncated":
            full = orjson.dumps(template)
            raw = full[: max(1, len(full) // 2)]
        elif kind == "array":
            raw = orjson.dumps([template.get("type"), template.get("uuid")])
        elif kind == "negative_tokens":
            usage["output_tokens"] = -usage["output_tokens"] - 1
        elif kind == "string_tokens":
            usage["input_tokens"] = str(usage["input_tokens"])
        elif kind == "no_ts":
            del bad["timestamp"]
        elif kind.startswith("version_"):
            bad["version"] = {"version_short": "2.0", "version_word": "unknown"}.get(kind, "v1.0.0")
        elif kind == "sidechain_string":
            bad["isSidechain"] = "false"
        elif kind == "null_model":
            bad["message"]["model"] = None
        elif kind == "null_request":
            bad["requestId"] = None
        elif kind == "spaced_usage":
            raw = json.dumps(bad).encode()  # ", " and ": ": no literal "usage":{ for ccusage
        elif kind == "float_tokens":
            raw = orjson.dumps(bad).replace(b'"output_tokens":1', b'"output_tokens":1.0', 1)
        elif kind == "empty_session":
            bad["sessionId"] = ""
        elif kind == "empty_request":
            bad["requestId"] = ""
        elif kind == "empty_message_id":
            bad["message"]["id"] = ""
        elif kind == "empty_model":
            bad["message"]["model"] = ""
        elif kind == "lowercase_z":
            bad["timestamp"] = bad["timestamp"][:-1] + "z"
        elif kind == "micro_ts":
            bad["timestamp"] = bad["timestamp"][:-1] + "123Z"
        elif kind == "speed_unknown":
            usage["speed"] = "turbo"
        elif kind == "cost_string":
            bad["costUSD"] = "0.01"
        elif kind == "api_error_string":  # ccusage's daily loader does not read the field
            bad["isApiErrorMessage"] = "no"
        else:  # duplicate_key
            raw = orjson.dumps(bad)[:-1] + b',"sessionId":"dup"}'
        if self.emit(s, {}, raw=raw if raw is not None else orjson.dumps(bad)):
            self.stats.bad_lines += 1
            self.stats.bad_kinds[kind] = self.stats.bad_kinds.get(kind, 0) + 1

    def emit_odd(self, s: Session) -> None:
        """A usage line that looks wrong but that ccusage counts, as the product must."""
        kind = self.pick(_ODD_KINDS)
        odd = self.assistant(s, self.pick(MODELS), [{"type": "text", "text": "x"}], 1)
        if kind == "no_type":
            del odd["type"]
        elif kind == "cwd_number":
            odd["cwd"] = 5
        elif kind == "fast":
            odd["message"]["usage"]["speed"] = "fast"
        elif kind == "offset_ts":
            odd["timestamp"] = odd["timestamp"][:-1] + "+02:00"
        else:  # no_millis
            odd["timestamp"] = odd["timestamp"][:19] + "Z"
        self.emit(s, odd)

    def base(self, s: Session, kind: str, parent: str | None) -> dict[str, Any]:
        s.t += self.between(200, 20_000)
        return {
            "parentUuid": parent,
            "isSidechain": s.sidechain,
            "userType": "external",
            "cwd": s.cwd,
            "sessionId": s.sid,
            "version": s.version,
            "gitBranch": s.branch,
            "type": kind,
            "uuid": self.uid(),
            "timestamp": ts(s.t),
        }

    def user(self, s: Session, parent: str | None, tool_id: str | None = None) -> dict[str, Any]:
        line = self.base(s, "user", parent)
        if tool_id is None:
            content: Any = self.text(300, 2500)
        else:
            block = {"tool_use_id": tool_id, "type": "tool_result", "content": self.text(400, 4500)}
            content = [block]
        line["message"] = {"role": "user", "content": content}
        return line

    def usage(self, output: int) -> dict[str, Any]:
        r = self.rng
        x = self.rand()
        cc = 0 if x < 0.5 else self.between(50, 4000) if x < 0.75 else self.between(2000, 30_000)
        usage: dict[str, Any] = {
            "input_tokens": self.pick(
                (self.between(1, 12), self.between(1, 12), self.between(100, 9000))
            ),
            "cache_creation_input_tokens": cc,
            "cache_read_input_tokens": self.between(0, 160_000),
            "output_tokens": output,
            "service_tier": "standard",
        }
        x = r.random()
        if x < 0.7:
            # Real lines have split == total; a few differ or are zero so rule 5 is exercised.
            one_h = cc if x < 0.2 else 0
            split = {"ephemeral_5m_input_tokens": cc - one_h, "ephemeral_1h_input_tokens": one_h}
            if x > 0.68:
                split = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
            elif x > 0.66:
                split["ephemeral_5m_input_tokens"] += self.between(1, 500)
            usage["cache_creation"] = split
        return usage

    def assistant(self, s: Session, model: str, blocks: list[Any], out: int) -> dict[str, Any]:
        line = self.base(s, "assistant", None)
        line["message"] = {
            "id": "msg_01" + self.uid().replace("-", "")[:22],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self.usage(out),
        }
        line["requestId"] = "req_011C" + self.uid().replace("-", "")[:20]
        return line

    def blocks(self) -> list[dict[str, Any]]:
        r = self.rng
        out: list[dict[str, Any]] = []
        if r.random() < 0.4:
            out.append({"type": "thinking", "thinking": self.text(300, 3500), "signature": "Eq"})
        out.append({"type": "text", "text": self.text(200, 3000)})
        for _ in range(self.pick((0, 1, 1, 2, 3))):
            name = self.pick(_TOOLS)
            inp = {"description": self.text(20, 80), "command": self.text(30, 600)}
            out.append(
                {"type": "tool_use", "id": "toolu_01" + self.uid()[:22], "name": name, "input": inp}
            )
        return out
