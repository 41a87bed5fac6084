"""``ingestor report``'s use of kept answers (``cli/report.py``'s ``_answer_json``), the engine
and the worker replaced: an answer is kept under the engine's state before its build, so a store
during the build makes the next ask build again; and no kept answer is asked for while ``up``
holds the data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestor.cli import report
from ingestor.plain_settings import PlainLocal
from ingestor.report.request import ReportRequest

DAILY = ReportRequest("daily")


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    part = data / "clickhouse" / "store" / "a58" / "a58-table" / "all_1_1_0"
    part.mkdir(parents=True)
    (data / "clickhouse" / "metadata").mkdir()
    plain = PlainLocal(data_dir=data, web_host="127.0.0.1", web_port=1)
    monkeypatch.setattr(PlainLocal, "read", classmethod(lambda cls: plain))
    monkeypatch.setattr(report, "held", lambda data_dir: False)
    return data


def _answers(data: Path, monkeypatch: pytest.MonkeyPatch, during: object = None) -> list[str]:
    """What ``_answer_json`` returns for two asks, each build's answer named by its number."""
    builds: list[str] = []

    def build(*args: object) -> bytes:
        builds.append(str(len(builds) + 1))
        if callable(during):
            during()
        return builds[-1].encode()

    monkeypatch.setattr(report, "_answer", build)
    return [report._answer_json(DAILY).decode() for _ in range(2)]


def test_an_answer_is_given_again_while_the_files_stay_the_same(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _answers(data, monkeypatch) == ["1", "1"]


def test_a_store_during_the_build_makes_the_next_ask_build_again(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = data / "clickhouse" / "store" / "a58" / "a58-table"
    parts = iter(range(2, 10))

    def store() -> None:
        (table / f"all_{next(parts)}_1_0").mkdir()

    assert _answers(data, monkeypatch, during=store) == ["1", "2"]


def test_not_asked_while_up_holds_the_data_dir(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "held", lambda data_dir: True)
    assert _answers(data, monkeypatch) == ["1", "2"]
    assert not (data / "answers").exists()


def test_the_usual_requests_are_the_plain_commands_and_keepable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `up` keeps answers under these requests: the CLI finds them only if it asks the same.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    usual = report.usual_requests()
    assert list(usual) == list(report.USUAL_KINDS)
    for kind, request in usual.items():
        assert request == ReportRequest(kind, tz="Asia/Tokyo", start_of_week="sunday")
        assert request.keepable
