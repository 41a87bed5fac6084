"""Rebuild ``ingestor/usage/prices.json`` from what the real ccusage charges, offline.

ccusage embeds LiteLLM's price table at build time plus its own built-in entries; neither is
published as a file. This asks the binary instead: for every model it writes one-line sessions
that use one kind of token (input, output, 5-minute and 1-hour cache writes, cache reads, below
and above the 200k tier, and ``speed: "fast"``), runs ``ccusage claude session --json --offline
--mode calculate``, and reads each price back from the cost. Run it when ccusage is upgraded:

    python tools/ccusage_prices.py --ccusage PATH/TO/ccusage > ingestor/usage/prices.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

# Every Claude model id in common use (dated ids and their aliases).
MODELS = (
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    "claude-opus-4-1",
    "claude-opus-4-1-20250805",
    "claude-opus-4-0",
    "claude-opus-4-20250514",
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-0",
    "claude-sonnet-4-20250514",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-3-7-sonnet-20250219",
    "claude-3-7-sonnet-latest",
    "claude-3-5-sonnet-20241022",
    "claude-3-5-sonnet-20240620",
    "claude-3-5-sonnet-latest",
    "claude-3-5-haiku-20241022",
    "claude-3-5-haiku-latest",
    "claude-3-opus-20240229",
    "claude-3-opus-latest",
    "claude-3-sonnet-20240229",
    "claude-3-haiku-20240307",
)
BASE, HIGH = 200_000, 1_000_000  # at the tier threshold (priced at base), and above it
KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


def _usage(kind: str, tokens: int) -> dict[str, object]:
    usage: dict[str, object] = {"input_tokens": 0, "output_tokens": 0}
    if kind == "input":
        usage["input_tokens"] = tokens
    elif kind == "output":
        usage["output_tokens"] = tokens
    elif kind == "cache_write_5m":
        usage["cache_creation_input_tokens"] = tokens
    elif kind == "cache_write_1h":
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": tokens}
    else:
        usage["cache_read_input_tokens"] = tokens
    return usage


def probe(ccusage: str, models: tuple[str, ...]) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp, "projects", "probe")
        project.mkdir(parents=True)
        names: dict[str, tuple[str, str, int]] = {}
        for m_index, model in enumerate(models):
            cases = [(kind, n) for kind in KINDS for n in (BASE, HIGH)] + [("fast", BASE)]
            for c_index, (kind, tokens) in enumerate(cases):
                usage = _usage("input" if kind == "fast" else kind, tokens)
                if kind == "fast":
                    usage["speed"] = "fast"
                line = {
                    "timestamp": "2025-01-01T00:00:00.000Z",
                    "sessionId": "s",
                    "version": "2.0.0",
                    "requestId": f"r{m_index}-{c_index}",
                    "message": {"id": f"m{m_index}-{c_index}", "model": model, "usage": usage},
                }
                name = f"p{m_index:03d}x{c_index:02d}"
                names[name] = (model, kind, tokens)
                (project / f"{name}.jsonl").write_text(json.dumps(line, separators=(",", ":")) + "\n")
        env = {**os.environ, "CLAUDE_CONFIG_DIR": tmp}
        out = subprocess.run(
            [ccusage, "claude", "session", "--json", "--offline", "--mode", "calculate", "-z", "UTC"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout
    costs: dict[tuple[str, str, int], Decimal] = {}
    for row in json.loads(out)["sessions"]:
        costs[names[row["sessionId"]]] = Decimal(repr(row["totalCost"]))
    prices: dict[str, dict[str, object]] = {}
    for model in models:
        entry: dict[str, object] = {}
        for kind in KINDS:
            base = _per_million(costs[(model, kind, BASE)] / BASE)
            high = costs[(model, kind, HIGH)]
            above = _per_million((high - base / 10**6 * BASE) / (HIGH - BASE))
            entry[kind] = _text(base)
            if above != base:
                entry[f"{kind}_above_200k"] = _text(above)
        fast = costs[(model, "fast", BASE)]
        plain = costs[(model, "input", BASE)]
        if plain:
            multiplier = (fast / plain).quantize(Decimal("0.001")).normalize()
            if multiplier != 1:
                entry["fast_multiplier"] = _text(multiplier)
        if any(Decimal(str(v)) for k, v in entry.items() if k in KINDS):
            prices[model] = entry
    return prices


def _per_million(per_token: Decimal) -> Decimal:
    return (per_token * 10**6).quantize(Decimal("1E-6")).normalize()


def _text(value: Decimal) -> str:
    return format(value, "f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ccusage", required=True, help="path to the ccusage binary")
    args = parser.parse_args()
    version = subprocess.run([args.ccusage, "--version"], capture_output=True, text=True).stdout
    document = {
        "source": f"{version.strip()} offline prices (LiteLLM snapshot + built-ins), read back "
        "from its --mode calculate costs by tools/ccusage_prices.py",
        "taken": date.today().isoformat(),
        "unit": "USD per million tokens",
        "tier_threshold_tokens": BASE,
        "models": probe(args.ccusage, MODELS),
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
