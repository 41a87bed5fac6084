"""``ingestor replay``'s display text and its time argument."""

from __future__ import annotations

import pytest

from ingestor.cli.progress import ReplaySnapshot, replay_lines
from ingestor.cli.replay import parse_time
from ingestor.errors import ConfigError


def test_the_line_shows_records_rate_lag_and_eta_and_fits_80_columns() -> None:
    s = ReplaySnapshot(
        messages_done=1_000,
        messages_total=4_000,
        records=250_000,
        dead_letters=12,
        records_per_s=50_000.0,
        messages_per_s=200.0,
    )
    [line] = replay_lines(s, width=1000)
    assert "replayed 1,000/4,000 messages (25%)" in line and "250,000 records" in line
    assert "50,000 records/s" in line and "lag 3,000 messages" in line and "ETA 0:15" in line
    [short] = replay_lines(s, width=80)
    assert len(short) <= 80 and "replayed" in short and "lag 3,000" in short
    done = ReplaySnapshot(messages_done=4_000, messages_total=4_000, messages_per_s=1.0)
    assert "ETA" not in replay_lines(done)[0] and "(100%)" in replay_lines(done)[0]
    assert "(100%)" in replay_lines(ReplaySnapshot())[0]  # nothing to replay is done


def test_times_are_iso_utc_unless_they_say_otherwise() -> None:
    assert parse_time("2025-09-02T00:00:00Z") == 1756771200000
    assert parse_time("2025-09-02T00:00:00") == 1756771200000
    assert parse_time("2025-09-02T02:00:00+02:00") == 1756771200000
    with pytest.raises(ConfigError):
        parse_time("yesterday")
