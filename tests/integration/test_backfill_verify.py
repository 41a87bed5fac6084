"""``ingestor backfill`` and ``ingestor verify`` on the embedded stack (Tansu + chdb), as a person
runs them: verify exits 0 after a clean ``up --once``; a backfill after it, or a second one,
changes no total anywhere; verify exits 1 and names the file after a table is tampered with (a
row deleted, a row replaced by one with other tokens); a date-filtered backfill stores exactly
the lines of its window and moves no resume point (the watcher's checkpoint, file_positions)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from pipeline import stack_env
from totals import snapshot

from ingestor.clickhouse.engine import ClickHouse, open_clickhouse
from ingestor.corpus.generate import generate
from ingestor.local.tansu import tansu_binary
from ingestor.plain_settings import ClickHouseTarget

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    try:
        tansu_binary()
    except Exception as exc:  # noqa: BLE001 - any reason there is no broker binary
        pytest.skip(f"no embedded broker: {exc}")
    yield stack_env(tmp_path / "data", batch_max_age_s="0.2", broker_session_timeout_s="6")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# `up` (and so backfill) rewrites session_summaries from ClickHouse when it starts on a fresh
# broker, with a new version; its first_activity can differ from the live table's (a streaming
# copy that was replaced leaves its earlier time in the live aggregate): compared by totals.
_REWRITTEN = ("ingest_runs", "session_summaries", "session_token_summary")


def _totals(ch: ClickHouse) -> object:
    sessions = ch.query(
        "SELECT count(), sum(total_tokens), sum(messages), sum(cost_usd) "
        "FROM session_summaries FINAL"
    )
    return snapshot(ch, skip=_REWRITTEN), sessions


def _engine(env: dict[str, str]) -> ClickHouse:
    path = Path(env["INGESTOR_DATA_DIR"]) / "clickhouse"
    return open_clickhouse(ClickHouseTarget(kind="chdb", database="ingestor", path=path))


def test_backfill_is_idempotent_and_verify_finds_tampering(
    env: dict[str, str], tmp_path: Path
) -> None:
    corpus = tmp_path / "claude"
    generate(corpus, lines=800, seed=7)  # two days, two sessions
    projects = str(corpus / "projects")
    checkpoint = Path(env["INGESTOR_DATA_DIR"]) / "producer" / "checkpoint.json"

    _ok(_cli(env, "up", "--once", projects))
    out = _ok(_cli(env, "verify", projects))
    assert "OK" in out and "accuracy ratio 1.000000; undercount 0.0000%" in out, out
    with _engine(env) as ch:
        clean = _totals(ch)
    saved = checkpoint.read_bytes()

    out = _ok(_cli(env, "backfill", projects))  # after up --once: nothing changes
    assert out.strip().splitlines()[-1].startswith("backfill: "), out
    with _engine(env) as ch:
        assert _totals(ch) == clean
        # Tampering: the first and the last usage line (days apart) deleted, one line's tokens
        # changed by a row that replaces it.
        first, last = (
            ch.query(
                "SELECT source_file, source_offset, timestamp FROM transcript_lines FINAL "
                f"WHERE has_usage = 1 ORDER BY timestamp {order}, source_offset LIMIT 1"
            )[0]
            for order in ("ASC", "DESC")
        )
        assert first[2].date() != last[2].date()
        for file, offset, _ in (first, last):
            ch.execute(
                f"ALTER TABLE transcript_lines DELETE WHERE source_file = '{file}' AND "
                f"source_offset = {offset} SETTINGS mutations_sync = 2"
            )
    done = _cli(env, "verify", projects)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "MISMATCH" in done.stdout and f"file {first[0]}: lines stored" in done.stdout

    # A window of the first line's day restores that line only, and moves no resume point.
    day = first[2].astimezone(UTC).strftime("%Y%m%d")
    with _engine(env) as ch:
        [(positions,)] = ch.query("SELECT count() FROM file_positions")
    out = _ok(_cli(env, "backfill", projects, "--since", day, "--until", day))
    assert checkpoint.read_bytes() == saved
    with _engine(env) as ch:
        assert ch.query("SELECT count() FROM file_positions") == [(positions,)]
        [(back,)] = ch.query(
            f"SELECT count() FROM transcript_lines FINAL WHERE source_file = '{first[0]}' "
            f"AND source_offset = {first[1]}"
        )
        assert back == 1
        [(in_window,)] = ch.query(
            "SELECT count() FROM transcript_lines FINAL "
            f"WHERE toDate(timestamp) = toDate('{first[2].date().isoformat()}')"
        )
    # The window's lines, and no other, were sent.
    assert f", {in_window:,} lines sent," in out.strip().splitlines()[-1], out
    done = _cli(env, "verify", projects)
    assert done.returncode == 1
    differing = [line for line in done.stdout.splitlines() if line.startswith("  file ")]
    assert differing and all(last[0] in line for line in differing), done.stdout

    with _engine(env) as ch:
        ch.execute(
            "INSERT INTO transcript_lines SELECT * REPLACE (input_tokens + 7 AS input_tokens) "
            f"FROM transcript_lines FINAL WHERE source_file = '{first[0]}' "
            f"AND source_offset = {first[1]}"
        )
    done = _cli(env, "verify", projects)
    assert done.returncode == 1
    assert f"file {first[0]}: usage tokens" in done.stdout, done.stdout
