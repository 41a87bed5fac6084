from __future__ import annotations

from ingestor.sink.allocators import JEMALLOC_DEFAULTS, jemalloc_conf


def test_without_options_of_its_own_jemalloc_gets_ours() -> None:
    assert jemalloc_conf(None) == JEMALLOC_DEFAULTS
    assert jemalloc_conf("") == JEMALLOC_DEFAULTS
    assert jemalloc_conf(" , ") == JEMALLOC_DEFAULTS


def test_options_a_person_set_come_last_so_they_win() -> None:
    # jemalloc applies a string's pairs in order: a key set twice keeps the last value.
    assert jemalloc_conf("dirty_decay_ms:5000", "dirty_decay_ms:1000") == (
        "dirty_decay_ms:1000,dirty_decay_ms:5000"
    )
    assert jemalloc_conf("narenas:1,", "dirty_decay_ms:1000") == "dirty_decay_ms:1000,narenas:1"
