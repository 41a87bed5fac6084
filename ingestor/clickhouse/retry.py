"""Retry a ClickHouse call with exponential backoff, on transient failures only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from ingestor.errors import TransientStorageError

__all__ = ["call_with_retry"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def call_with_retry(
    fn: Callable[[], T],
    *,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """``fn()``, retried up to ``retries`` times after a ``TransientStorageError``.

    Waits ``backoff_s``, then twice that, and so on between attempts. Any other exception, and
    the last transient one once retries run out, propagates unchanged. ``on_retry`` is called
    before each retry (a metric). Safe only for calls
    that are idempotent, such as inserts that carry a deduplication token.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except TransientStorageError as e:
            if attempt >= retries:
                raise
            delay = backoff_s * (2**attempt)
            attempt += 1
            log.warning(
                "transient ClickHouse failure (retry %d/%d in %.2fs): %s",
                attempt,
                retries,
                delay,
                e,
            )
            if on_retry is not None:
                on_retry()
            sleep(delay)
