"""The Host check of the worker's HTTP views (``worker/hosts.py``)."""

from __future__ import annotations

from ingestor.worker.hosts import HostCheck


def test_loopback_bind_answers_its_own_names_only() -> None:
    check = HostCheck("127.0.0.1")
    for ok in ("127.0.0.1:6066", "localhost:6066", "LOCALHOST", "[::1]:6066", "localhost."):
        assert check.allows(ok), ok
    for bad in ("evil.example.com", "evil.example.com:6066", "", None, "127.0.0.1.evil.com"):
        assert not check.allows(bad), bad


def test_allow_list_and_wildcard() -> None:
    check = HostCheck("0.0.0.0", "box.lan, 10.0.0.5")
    assert check.allows("box.lan:6066") and check.allows("10.0.0.5")
    assert not check.allows("localhost")
    assert HostCheck("127.0.0.1", "*").allows("anything")
