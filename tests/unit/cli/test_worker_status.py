"""The worker leaves with ``os._exit`` once ClickHouse is closed (``cli/worker.py``): the status
of Faust's ``SystemExit`` must be the one Python itself would have made of it."""

from __future__ import annotations

import pytest

from ingestor.cli.worker import _status


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (65, 65), (75, 75)])
def test_an_int_or_none_is_the_status(code: int | None, status: int) -> None:
    assert _status(code) == status


def test_a_message_is_printed_and_the_status_is_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert _status("the input needs a look") == 1
    assert capsys.readouterr().err == "the input needs a look\n"
