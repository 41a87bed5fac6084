from __future__ import annotations

import pytest

from ingestor.clickhouse.retry import call_with_retry
from ingestor.errors import StorageError, TransientStorageError


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_transient_failures_are_retried_with_exponential_backoff() -> None:
    sleeps: list[float] = []
    fn = Flaky([TransientStorageError("a"), TransientStorageError("b")])
    assert call_with_retry(fn, retries=3, backoff_s=0.5, sleep=sleeps.append) == "ok"
    assert fn.calls == 3
    assert sleeps == [0.5, 1.0]


def test_gives_up_after_retries_with_the_last_error() -> None:
    sleeps: list[float] = []
    fn = Flaky([TransientStorageError(str(i)) for i in range(5)])
    with pytest.raises(TransientStorageError, match="2"):
        call_with_retry(fn, retries=2, backoff_s=1, sleep=sleeps.append)
    assert fn.calls == 3
    assert sleeps == [1, 2]


@pytest.mark.parametrize("error", [StorageError("bad sql"), ValueError("bug")])
def test_other_errors_are_not_retried(error: Exception) -> None:
    sleeps: list[float] = []
    fn = Flaky([error])
    with pytest.raises(type(error)):
        call_with_retry(fn, retries=5, backoff_s=1, sleep=sleeps.append)
    assert fn.calls == 1
    assert sleeps == []


def test_zero_retries_means_one_attempt() -> None:
    fn = Flaky([TransientStorageError("x")])
    with pytest.raises(TransientStorageError):
        call_with_retry(fn, retries=0, backoff_s=1, sleep=lambda s: None)
    assert fn.calls == 1
