from __future__ import annotations

import platform

import pytest

from ingestor.worker.trim import Trimmer, malloc_trim, tune_malloc


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trims_after_a_store_at_most_once_an_interval() -> None:
    clock, calls = _Clock(), []
    trimmer = Trimmer(2.0, clock, trim=lambda: calls.append(clock.now) or True)
    assert not trimmer.after_store()  # the interval counts from the start
    clock.now += 1.9
    assert not trimmer.after_store()
    clock.now += 0.1
    assert trimmer.after_store()
    clock.now += 1.0
    assert not trimmer.after_store()
    clock.now += 1.0
    assert trimmer.after_store()
    assert calls == [102.0, 104.0]
    assert trimmer.trims == 2


def test_an_interval_of_zero_never_trims() -> None:
    clock, calls = _Clock(), []
    trimmer = Trimmer(0, clock, trim=lambda: calls.append(1) or True)
    clock.now += 1e6
    assert not trimmer.after_store()
    assert calls == []


def test_without_malloc_trim_it_stops_asking() -> None:
    clock, calls = _Clock(), []
    trimmer = Trimmer(1.0, clock, trim=lambda: calls.append(1) is None and False)
    clock.now += 5
    assert not trimmer.after_store()
    clock.now += 5
    assert not trimmer.after_store()
    assert calls == [1]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_trims() -> None:
    assert malloc_trim() is True


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's parameters are glibc's")
def test_glibc_takes_the_malloc_tuning() -> None:
    assert tune_malloc() is True
