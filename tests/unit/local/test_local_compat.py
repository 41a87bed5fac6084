"""The embedded broker's consumer-group session timeout (Tansu holds a first join for half), and
the group claimed for Faust's assignor."""

from __future__ import annotations

import pytest

from ingestor.local.compat import FAUST_ASSIGNOR, TANSU_SESSION_TIMEOUT_S, tansu_session_timeout
from ingestor.settings import load_settings
from ingestor.worker.app import DEFAULT_SESSION_TIMEOUT_S


def test_tansu_gets_a_short_session_timeout_unless_one_is_set() -> None:
    assert tansu_session_timeout(None) == TANSU_SESSION_TIMEOUT_S < DEFAULT_SESSION_TIMEOUT_S
    assert tansu_session_timeout(6.0) == 6.0


def test_the_setting_is_unset_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INGESTOR_BROKER_SESSION_TIMEOUT_S", raising=False)
    assert load_settings().broker_session_timeout_s is None
    assert load_settings(broker_session_timeout_s=7).broker_session_timeout_s == 7


def test_the_group_is_claimed_for_the_protocol_faust_offers() -> None:
    # Tansu answers a member whose protocols miss the group's with InconsistentGroupProtocol.
    from faust.assignor import PartitionAssignor

    assert PartitionAssignor.name.fget(None) == FAUST_ASSIGNOR  # type: ignore[attr-defined]
