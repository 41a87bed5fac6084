"""What a usage line costs: the versioned price file and ccusage's arithmetic. Pure.

Prices live in ``prices.json`` beside this module (USD per million tokens, per model: input,
output, 5-minute and 1-hour cache writes, cache reads, each with its rate above the 200k-token
tier where the vendor has one, and the ``speed: "fast"`` multiplier); the file says where and
when it was taken (``tools/ccusage_prices.py`` reads them back from the ccusage binary).

The arithmetic is ccusage's (``src/cost.rs``): each kind of token is tiered on its own count
within one line (``tiered_cost``: tokens above 200,000 at the higher rate), the five add up, and
a fast line is multiplied. A model is found by its exact id, else the way ccusage matches price
keys (``pricing.rs``: ``pricing_key_matches``, longest key wins): ``anthropic/claude-…``,
``claude-…-v1:0`` and ``claude-3.5-…`` spellings resolve, while a different version such as
``claude-opus-4-0`` against ``claude-opus-4`` does not. An unknown model costs 0 and is reported
as missing, as ccusage does.

Cost modes (``--mode``): ``auto`` takes the line's ``costUSD`` when it has one, else calculates;
``calculate`` always calculates; ``display`` takes ``costUSD`` or 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache, lru_cache
from importlib import resources
from typing import Any

__all__ = [
    "PRICES_FILE",
    "CostMode",
    "Price",
    "PriceTable",
    "Rate",
    "SYNTHETIC_MODEL",
    "line_cost",
    "price_table",
]

PRICES_FILE = "prices.json"
SYNTHETIC_MODEL = "<synthetic>"
_MILLION = Decimal(1_000_000)
_DATE_SUFFIX_DIGITS = 8  # claude-…-YYYYMMDD is the same model; other numbers are versions
_DIGITS = "0123456789"


class CostMode(StrEnum):
    AUTO = "auto"
    CALCULATE = "calculate"
    DISPLAY = "display"


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per million tokens, and the rate above ``threshold`` tokens (None: no tier)."""

    base: Decimal
    above: Decimal | None = None

    def cost(self, tokens: int, threshold: int) -> Decimal:
        """ccusage's ``tiered_cost``, in micro-dollars times a million (divide by a million)."""
        if tokens <= 0:
            return Decimal(0)
        if self.above is not None and tokens > threshold:
            return threshold * self.base + (tokens - threshold) * self.above
        return tokens * self.base


@dataclass(frozen=True, slots=True)
class Price:
    input: Rate
    output: Rate
    cache_write_5m: Rate
    cache_write_1h: Rate
    cache_read: Rate
    fast_multiplier: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: lookups are cached per table
class PriceTable:
    source: str
    taken: str
    threshold: int
    models: dict[str, Price]

    def find(self, model: str | None) -> Price | None:
        """The price ccusage would use for ``model``, or None when it has none."""
        if not model or model == SYNTHETIC_MODEL:
            return None
        return _find(self, model)


@lru_cache(maxsize=4096)
def _find(table: PriceTable, model: str) -> Price | None:
    exact = table.models.get(model)
    if exact is not None:
        return exact
    normalized = _normalized(model)
    best: str | None = None
    for key in table.models:
        if _key_matches(key, model, normalized) and (
            best is None or len(key) > len(best) or (len(key) == len(best) and key < best)
        ):
            best = key
    return None if best is None else table.models[best]


def line_cost(
    table: PriceTable,
    model: str | None,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_write_5m: int,
    cache_write_1h: int,
    cache_read: int,
    fast: bool,
) -> Decimal | None:
    """The calculated USD cost of one line, or None when the model has no price."""
    price = table.find(model)
    if price is None:
        return None
    t = table.threshold
    micro = (
        price.input.cost(input_tokens, t)
        + price.output.cost(output_tokens, t)
        + price.cache_write_5m.cost(cache_write_5m, t)
        + price.cache_write_1h.cost(cache_write_1h, t)
        + price.cache_read.cost(cache_read, t)
    )
    if fast:
        micro *= price.fast_multiplier
    return micro / _MILLION


@cache
def price_table() -> PriceTable:
    """The repository's price file, read once."""
    text = resources.files("ingestor.usage").joinpath(PRICES_FILE).read_text(encoding="utf-8")
    return parse_price_file(json.loads(text))


def parse_price_file(doc: dict[str, Any]) -> PriceTable:
    def rate(entry: dict[str, str], kind: str) -> Rate:
        above = entry.get(f"{kind}_above_200k")
        return Rate(Decimal(entry[kind]), None if above is None else Decimal(above))

    models = {
        name: Price(
            input=rate(entry, "input"),
            output=rate(entry, "output"),
            cache_write_5m=rate(entry, "cache_write_5m"),
            cache_write_1h=rate(entry, "cache_write_1h"),
            cache_read=rate(entry, "cache_read"),
            fast_multiplier=Decimal(entry.get("fast_multiplier", "1")),
        )
        for name, entry in doc["models"].items()
    }
    return PriceTable(
        source=str(doc["source"]),
        taken=str(doc["taken"]),
        threshold=int(doc["tier_threshold_tokens"]),
        models=models,
    )


# ccusage's price-key matching (pricing.rs), over this file's keys.


def _normalized(value: str) -> str:
    return value.replace(".", "-").replace("@", "-")


def _key_matches(candidate: str, model: str, normalized_model: str) -> bool:
    if _contains_key(model, candidate) or _contains_key(candidate, model):
        return True
    normalized_candidate = _normalized(candidate)
    return _contains_key(normalized_model, normalized_candidate) or _contains_key(
        normalized_candidate, normalized_model
    )


def _contains_key(value: str, key: str) -> bool:
    start = value.find(key)
    while start >= 0:
        before_ok = start == 0 or _is_boundary(value[start - 1])
        if before_ok and _suffix_allows(key, value[start + len(key) :]):
            return True
        start = value.find(key, start + len(key))  # Rust's match_indices: no overlap
    return False


def _is_boundary(char: str) -> bool:
    return not (char.isascii() and char.isalnum())


def _suffix_allows(key: str, suffix: str) -> bool:
    if not suffix:
        return True
    if not _is_boundary(suffix[0]):
        return False
    return not _numeric_version_follows(key, suffix)


def _numeric_version_follows(key: str, suffix: str) -> bool:
    if not key or key[-1] not in _DIGITS or suffix[0] not in "-.":
        return False
    rest = suffix[1:]
    digits = len(rest) - len(rest.lstrip(_DIGITS))
    if digits == 0:
        return False
    after = rest[digits : digits + 1]
    return not (digits == _DATE_SUFFIX_DIGITS and (not after or _is_boundary(after)))
