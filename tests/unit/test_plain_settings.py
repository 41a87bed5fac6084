"""``PlainLocal`` reads what ``Settings`` reads, or nothing: the report command's fast path and
the settings it skips agree on the data dir and the worker's address."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingestor.plain_settings import ClickHouseTarget, PlainLocal, Secret
from ingestor.settings import load_settings


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for name in list(os.environ):
        if name.upper().startswith("INGESTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"INGESTOR_DATA_DIR": "/srv/data", "INGESTOR_WEB_PORT": "7070"},
        {"ingestor_data_dir": "relative/dir", "Ingestor_Web_Host": "localhost"},
        {"INGESTOR_WEB_PORT": "0"},
        {"INGESTOR_WEB_PORT": "65535", "INGESTOR_BUDGETS": "session:1h:20"},
    ],
)
def test_plain_values_are_the_settings(
    clean: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    plain = PlainLocal.read()
    settings = load_settings()
    assert plain is not None
    assert (plain.data_dir, plain.web_host, plain.web_port) == (
        settings.data_dir,
        settings.web_host,
        settings.web_port,
    )
    assert plain.clickhouse == settings.clickhouse
    assert plain.clickhouse.kind == "chdb"


@pytest.mark.parametrize(
    "env",
    [
        {"INGESTOR_CLICKHOUSE_URL": "clickhouse://localhost:9000/db"},
        {"INGESTOR_CLICKHOUSE_URL": "chdb:///elsewhere"},
        {"INGESTOR_WEB_PORT": "70000"},
        {"INGESTOR_WEB_PORT": " 7070"},
        {"INGESTOR_WEB_PORT": "x"},
        {"INGESTOR_DATA_DIR": ""},
        {"INGESTOR_WEB_HOST": ""},
    ],
)
def test_anything_else_is_left_to_settings(
    clean: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert PlainLocal.read() is None


def test_a_settings_file_is_left_to_settings(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".ingestor.env").write_text("INGESTOR_WEB_PORT=7070\n")
    assert PlainLocal.read() is None
    other = clean / "other.env"
    other.write_text("INGESTOR_DATA_DIR=/srv\n")
    monkeypatch.setenv("INGESTOR_ENV_FILE", str(other))
    assert PlainLocal.read() is None


def _loaded(modules: str, heavy: tuple[str, ...]) -> list[str]:
    """Which of ``heavy`` (packages or modules) a fresh interpreter holds after importing
    ``modules`` (comma-separated)."""
    code = (
        f"import json, sys\nimport {modules}\nheavy = {heavy!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m.split('.')[0] in heavy or m in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found: list[str] = json.loads(out.stdout)
    return found


def test_a_report_asked_of_the_worker_loads_no_pydantic_nor_engine() -> None:
    """What ``ingestor report daily --json`` imports before it asks the running worker."""
    modules = (
        "ingestor.cli.main, ingestor.cli.report, ingestor.plain_settings, ingestor.local.pidlock"
    )
    heavy = ("pydantic", "pyarrow", "chdb", "faust", "rich", "ingestor.settings")
    heavy += ("ingestor.report.counted", "ingestor.clickhouse", "importlib.metadata")
    heavy += ("http", "urllib.request")  # only once it asks: a kept answer needs neither
    assert _loaded(modules, heavy) == []


def test_the_report_package_exports_the_build_function() -> None:
    """A lazy ``build`` in ``ingestor/report/__init__.py`` (a module ``__getattr__``) would
    hand out the ``build`` submodule once it is imported."""
    import importlib

    module = importlib.import_module("ingestor.report.build")
    from ingestor.report import build

    assert build is module.build


def test_a_report_built_from_the_engine_loads_no_pydantic() -> None:
    """What ``ingestor report`` imports to build an answer from the engine in the plain case
    (``open_clickhouse`` and the builder; chdb itself loads when the engine opens)."""
    modules = "ingestor.cli.report, ingestor.clickhouse.engine, ingestor.report.build"
    assert _loaded(modules, ("pydantic", "ingestor.settings")) == []


def test_a_target_never_shows_its_password() -> None:
    target = ClickHouseTarget.parse("clickhouse://u:s3cr%40t@db:9000/x", default_path=Path("/d"))
    assert target.password.get_secret_value() == "s3cr@t"
    assert "s3cr" not in repr(target) and "s3cr" not in str(target)
    assert target.password == Secret("s3cr@t") and target.password != Secret("other")
    assert hash(target) == hash(
        ClickHouseTarget.parse("clickhouse://u:s3cr%40t@db:9000/x", default_path=Path("/d"))
    )
