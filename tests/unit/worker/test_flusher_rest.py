"""``flusher.rested``: after a store the insert thread rests ``batch_rest_ratio`` times as long as
that store took before a batch may go at the min age."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ingestor.settings import Settings
from ingestor.worker import flusher

NOW = 100.0  # the clock ``rested`` reads, fixed


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flusher, "time", SimpleNamespace(monotonic=lambda: NOW))


def _state(ratio: float | None, *, took_s: float, ago_s: float) -> Any:
    ratios = {} if ratio is None else {"batch_rest_ratio": ratio}
    settings = Settings(_env_file=None, **ratios)  # type: ignore[arg-type]
    return SimpleNamespace(settings=settings, insert_s=took_s, stored_at=NOW - ago_s)


def test_a_tenth_of_the_last_store_by_default() -> None:
    assert not flusher.rested(_state(None, took_s=0.4, ago_s=0.03))
    assert flusher.rested(_state(None, took_s=0.4, ago_s=0.05))


def test_no_rest_at_zero() -> None:
    assert flusher.rested(_state(0.0, took_s=0.4, ago_s=0.0))


@pytest.mark.parametrize(
    ("ratio", "ago_s", "expected"),
    [(1.0, 0.1, False), (1.0, 0.5, True), (0.5, 0.1, False), (0.5, 0.3, True)],
)
def test_the_rest_is_the_ratio_of_the_last_store(
    ratio: float, ago_s: float, expected: bool
) -> None:
    # A store of 0.4 s: a ratio of 1 rests 0.4 s, 0.5 rests 0.2 s.
    assert flusher.rested(_state(ratio, took_s=0.4, ago_s=ago_s)) is expected
