"""What a usage line cost, from Anthropic's published per-million-token prices. Pure.

Cache writes are priced from the input price: 5-minute writes at 1.25×, 1-hour writes at 2×,
cache reads at 0.1×. Model ids are matched by family and version, whatever the provider
spelling (``claude-sonnet-4-5-20250929``, ``claude-3-5-sonnet-latest``,
``anthropic.claude-3-5-haiku-20241022-v1:0``). An unknown model, ``<synthetic>`` or no model
costs 0: a wrong price is worse than a visibly missing one.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from ingestor.models import Usage

__all__ = ["SYNTHETIC_MODEL", "Price", "cache_split", "line_cost", "price_for", "tokens_cost"]

SYNTHETIC_MODEL = "<synthetic>"
_MILLION = Decimal(1_000_000)


class Price(NamedTuple):
    """USD per million tokens."""

    input: Decimal
    output: Decimal

    @property
    def cache_write_5m(self) -> Decimal:
        return self.input * Decimal("1.25")

    @property
    def cache_write_1h(self) -> Decimal:
        return self.input * 2

    @property
    def cache_read(self) -> Decimal:
        return self.input * Decimal("0.1")


def _p(input_usd: str, output_usd: str) -> Price:
    return Price(Decimal(input_usd), Decimal(output_usd))


# (family, major, minor) -> price; minor 0 also stands for "no minor version" (claude-opus-4).
_PRICES: dict[tuple[str, int, int], Price] = {
    ("opus", 4, 5): _p("5", "25"),
    ("opus", 4, 1): _p("15", "75"),
    ("opus", 4, 0): _p("15", "75"),
    ("opus", 3, 0): _p("15", "75"),
    ("sonnet", 4, 5): _p("3", "15"),
    ("sonnet", 4, 0): _p("3", "15"),
    ("sonnet", 3, 7): _p("3", "15"),
    ("sonnet", 3, 5): _p("3", "15"),
    ("haiku", 4, 5): _p("1", "5"),
    ("haiku", 3, 5): _p("0.8", "4"),
    ("haiku", 3, 0): _p("0.25", "1.25"),
}

# claude-<family>-<major>[-<minor>] (2025+) and claude-<major>[-<minor>]-<family> (2024). A minor
# version is one or two digits; eight digits are a date (claude-opus-4-20250514 is Opus 4.0).
_NEW_STYLE = re.compile(r"claude-(opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?![\d.])")
_OLD_STYLE = re.compile(r"claude-(\d+)(?:-(\d{1,2}))?-(opus|sonnet|haiku)(?![a-z])")


@lru_cache(maxsize=1024)
def price_for(model: str | None) -> Price | None:
    """The price of ``model``, or None when it is unknown (then its lines cost 0)."""
    if not model or model == SYNTHETIC_MODEL:
        return None
    name = model.lower()
    start = name.find("claude-")
    if start < 0:
        return None
    name = name[start:]
    if match := _NEW_STYLE.match(name):
        family, major, minor = match.group(1), match.group(2), match.group(3)
    elif match := _OLD_STYLE.match(name):
        major, minor, family = match.group(1), match.group(2), match.group(3)
    else:
        return None
    return _PRICES.get((family, int(major), int(minor or 0)))


def cache_split(usage: Usage) -> tuple[int, int]:
    """Cache-creation tokens as (5-minute, 1-hour) writes.

    The ephemeral split when present (non-zero), else all of ``cache_creation_input_tokens``
    as 5-minute writes. The two always add up to ``usage.cache_creation_tokens``.
    """
    cc = usage.cache_creation
    if cc is not None and (cc.ephemeral_5m_input_tokens or cc.ephemeral_1h_input_tokens):
        return cc.ephemeral_5m_input_tokens, cc.ephemeral_1h_input_tokens
    return usage.cache_creation_input_tokens, 0


def line_cost(model: str | None, usage: Usage) -> Decimal:
    """The exact USD cost of one usage line; ``Decimal(0)`` for an unknown model."""
    write_5m, write_1h = cache_split(usage)
    return tokens_cost(
        model,
        usage.input_tokens,
        usage.output_tokens,
        write_5m,
        write_1h,
        usage.cache_read_input_tokens,
    )


def tokens_cost(
    model: str | None, input: int, output: int, write_5m: int, write_1h: int, cache_read: int
) -> Decimal:
    """``line_cost`` over plain token counts (cache writes already split by ``cache_split``)."""
    rates = _rates(model)
    if rates is None:
        return Decimal(0)
    micro = (
        input * rates[0]
        + output * rates[1]
        + write_5m * rates[2]
        + write_1h * rates[3]
        + cache_read * rates[4]
    )
    return micro / _MILLION


@lru_cache(maxsize=1024)
def _rates(model: str | None) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None:
    # The derived cache prices once per model, not once per line.
    price = price_for(model)
    if price is None:
        return None
    return (price.input, price.output, price.cache_write_5m, price.cache_write_1h, price.cache_read)
