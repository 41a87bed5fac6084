from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestor.obs.logs import RUN_ID_ENV, secrets_in, setup_logging

PASSWORD = 'hunter2-"s3cr3t"\\x'
CH_PASSWORD = "ch-pass/word"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_run_id_and_never_a_secret(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setenv("INGESTOR_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("INGESTOR_CLICKHOUSE_URL", "clickhouse://u:ch-pass%2Fword@db:9000/x")
    monkeypatch.setenv(RUN_ID_ENV, "run-42")
    out = io.StringIO()
    setup_logging(logging.INFO, fmt="json", stream=out)
    log = logging.getLogger("ingestor.test")
    log.info("config %s", {"sasl_plain_password": PASSWORD, "user": "me"})
    log.debug("not shown")
    try:
        raise RuntimeError(f"login failed with {PASSWORD} and {CH_PASSWORD}")
    except RuntimeError:
        log.exception("broker said no")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert {r["run_id"] for r in records} == {"run-42"}
    assert records[0]["level"] == "info" and records[0]["logger"] == "ingestor.test"
    assert "'user': 'me'" in records[0]["msg"] and "***" in records[0]["msg"]
    assert "RuntimeError" in records[1]["exc"]
    for secret in (PASSWORD, CH_PASSWORD, "ch-pass%2Fword", "hunter2"):
        assert secret not in out.getvalue()


def test_text_format_is_redacted_too(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setenv("INGESTOR_KAFKA_SASL_PASSWORD", PASSWORD)
    out = io.StringIO()
    setup_logging(logging.WARNING, fmt="text", stream=out)
    logging.getLogger("x").warning("password is %s", PASSWORD)
    assert PASSWORD not in out.getvalue() and "password is ***" in out.getvalue()
    assert os.environ[RUN_ID_ENV]  # exported, so children share it


def test_only_secret_variables_count() -> None:
    env = {
        "INGESTOR_KAFKA_SASL_PASSWORD": "abcdef",
        "INGESTOR_API_TOKEN": "tok-123",
        "INGESTOR_KAFKA_SASL_USERNAME": "alice",
        "INGESTOR_SSL_PASSWORD_FILE": "/etc/pw",
        "OTHER_PASSWORD": "zzzzzz",
        "INGESTOR_CLICKHOUSE_URL": "clickhouse://default@db:9000/x",
    }
    assert secrets_in(env) == ["tok-123", "abcdef"]


def test_every_line_of_a_cli_process_is_json_with_the_run_id(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "INGESTOR_LOG_FORMAT": "json",
        "INGESTOR_RUN_ID": "run-cli",
        "INGESTOR_KAFKA_SASL_PASSWORD": PASSWORD,
        "INGESTOR_DATA_DIR": str(tmp_path),
        "INGESTOR_ENV_FILE": str(tmp_path / "none.env"),
    }
    code = (
        "import logging, sys\n"
        "from ingestor.cli import main as m\n"
        "from ingestor.settings import load_settings\n"
        "def run(args):\n"
        "    logging.getLogger('ingestor.probe').warning('settings %r', load_settings())\n"
        "    logging.getLogger('aiokafka').info('sasl_plain_password=%s', sys.argv[-1])\n"
        "    return 0\n"
        "import ingestor.cli.schema as schema\n"
        "schema.run = run\n"
        "sys.exit(m.main(['schema', '-v', 'apply']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, PASSWORD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) >= 2
    for line in lines:
        record = json.loads(line)
        assert record["run_id"] == "run-cli"
    assert "hunter2" not in done.stderr
