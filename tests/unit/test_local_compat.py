"""The embedded broker's consumer-group session timeout (Tansu holds a first join for half)."""

from __future__ import annotations

import pytest

from ingestor.local.compat import TANSU_SESSION_TIMEOUT_S, tansu_session_timeout
from ingestor.settings import load_settings
from ingestor.worker.app import DEFAULT_SESSION_TIMEOUT_S


def test_tansu_gets_a_short_session_timeout_unless_one_is_set() -> None:
    assert tansu_session_timeout(None) == TANSU_SESSION_TIMEOUT_S < DEFAULT_SESSION_TIMEOUT_S
    assert tansu_session_timeout(6.0) == 6.0


def test_the_setting_is_unset_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INGESTOR_BROKER_SESSION_TIMEOUT_S", raising=False)
    assert load_settings().broker_session_timeout_s is None
    assert load_settings(broker_session_timeout_s=7).broker_session_timeout_s == 7
