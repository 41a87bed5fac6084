from __future__ import annotations

from decimal import Decimal

import pytest

from ingestor.models import CacheCreation, Usage
from ingestor.pricing import Price, cache_split, line_cost, price_for


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("claude-opus-4-20250514", ("15", "75")),
        ("claude-opus-4-0", ("15", "75")),
        ("claude-opus-4-1-20250805", ("15", "75")),
        ("claude-opus-4-5-20251101", ("5", "25")),
        ("claude-opus-4-5", ("5", "25")),
        ("claude-sonnet-4-20250514", ("3", "15")),
        ("claude-sonnet-4-5-20250929", ("3", "15")),
        ("claude-3-7-sonnet-20250219", ("3", "15")),
        ("claude-3-5-sonnet-20241022", ("3", "15")),
        ("claude-3-5-sonnet-latest", ("3", "15")),
        ("claude-haiku-4-5-20251001", ("1", "5")),
        ("claude-3-5-haiku-20241022", ("0.8", "4")),
        ("claude-3-haiku-20240307", ("0.25", "1.25")),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", ("0.8", "4")),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", ("3", "15")),
        ("claude-3-5-sonnet-v2@20241022", ("3", "15")),
    ],
)
def test_known_models(model: str, price: tuple[str, str]) -> None:
    assert price_for(model) == Price(Decimal(price[0]), Decimal(price[1]))


@pytest.mark.parametrize(
    "model", [None, "", "<synthetic>", "gpt-4o", "claude-opus-4-6", "claude-sonnet-9", "claude"]
)
def test_unknown_models_cost_nothing(model: str | None) -> None:
    assert price_for(model) is None
    assert line_cost(model, Usage(input_tokens=1000, output_tokens=1000)) == 0


def test_cost_of_every_token_kind_is_exact() -> None:
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=1_000_000,
    )
    # sonnet: 3 input + 15 output + 3.75 5m write + 0.3 read
    assert line_cost("claude-sonnet-4-5", usage) == Decimal("22.05")


def test_ephemeral_split_prices_1h_writes_at_twice_input() -> None:
    usage = Usage(
        input_tokens=0,
        output_tokens=0,
        cache_creation_input_tokens=999,  # ignored when the split is present
        cache_creation=CacheCreation(
            ephemeral_5m_input_tokens=1_000_000, ephemeral_1h_input_tokens=2_000_000
        ),
    )
    assert cache_split(usage) == (1_000_000, 2_000_000)
    assert line_cost("claude-opus-4-1", usage) == Decimal("18.75") + Decimal("60")


def test_zero_split_falls_back_to_cache_creation_input_tokens() -> None:
    usage = Usage(
        input_tokens=0,
        output_tokens=0,
        cache_creation_input_tokens=100,
        cache_creation=CacheCreation(),
    )
    assert cache_split(usage) == (100, 0)
    assert cache_split(usage)[0] + cache_split(usage)[1] == usage.cache_creation_tokens


def test_single_tokens_keep_every_digit() -> None:
    usage = Usage(input_tokens=0, output_tokens=0, cache_read_input_tokens=1)
    assert line_cost("claude-3-haiku-20240307", usage) == Decimal("0.000000025")
    one = Usage(input_tokens=1, output_tokens=1)
    assert line_cost("claude-3-5-haiku-20241022", one) == Decimal("0.0000048")
