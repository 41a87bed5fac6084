from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ingestor.errors import InvalidRecord, Location
from ingestor.models import validate_event, validate_ledger, validate_transcript_line
from ingestor.rows.records import (
    EPOCH,
    UNKNOWN_FIRST_TS,
    dead_letter_row,
    event_rows,
    ledger_row,
    money,
    transcript_row,
)
from ingestor.wire import TranscriptSource
from ingestor.worker.dlq import DeadLetter

SOURCE = TranscriptSource(
    file="/home/u/.claude/projects/-proj/abc-123.jsonl",
    project="-proj",
    generation=2,
    first_ts="2025-01-01T08:00:00.500Z",
)
TRANSCRIPT_COLUMNS = [
    "source_file", "source_generation", "source_offset", "source_length", "file_first_ts",
    "project", "dedup_scope", "session_id", "line_session_id", "line_type", "uuid", "parent_uuid",
    "request_id",
    "message_id", "timestamp", "is_sidechain", "is_api_error", "model", "has_usage", "input_tokens",
    "output_tokens", "cache_creation_tokens", "cache_read_tokens", "cache_creation_5m",
    "cache_creation_1h", "service_tier", "speed", "cost_usd", "has_cost_usd", "cost_calculated",
    "price_missing", "usage_limit_reset_ms", "tool_uses", "cwd", "version",
]  # fmt: skip


def _line(**extra: Any) -> dict[str, Any]:
    return {
        "type": "assistant",
        "timestamp": "2025-01-02T03:04:05.678Z",
        "sessionId": "sess",
        "uuid": "u1",
        "parentUuid": "u0",
        "requestId": "req",
        "isSidechain": True,
        "cwd": "/w",
        "version": "2.0.1",
        "message": {
            "id": "msg",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {
                "input_tokens": 1000,
                "output_tokens": 100,
                "cache_creation_input_tokens": 50,
                "cache_read_input_tokens": 10,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 20,
                    "ephemeral_1h_input_tokens": 30,
                },
                "service_tier": "standard",
            },
            "content": [{"type": "tool_use", "name": "Bash"}, {"type": "text", "text": "hi"}],
        },
        **extra,
    }


def test_transcript_row_has_every_column_with_its_value() -> None:
    row = transcript_row(validate_transcript_line(_line()), SOURCE, 4096, 321)
    assert list(row) == TRANSCRIPT_COLUMNS
    assert row["source_file"] == SOURCE.file
    assert (row["source_generation"], row["source_offset"], row["source_length"]) == (2, 4096, 321)
    assert row["file_first_ts"] == datetime(2025, 1, 1, 8, 0, 0, 500000, tzinfo=UTC)
    assert row["timestamp"] == datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert (row["session_id"], row["message_id"], row["request_id"]) == ("abc-123", "msg", "req")
    assert (row["is_sidechain"], row["is_api_error"], row["has_usage"]) == (1, 0, 1)
    assert row["cache_creation_tokens"] == 50  # the 5m/1h split
    assert (row["cache_creation_5m"], row["cache_creation_1h"]) == (20, 30)
    assert row["tool_uses"] == ("Bash",)
    # 1000×3 + 100×15 + 20×3.75 + 30×6 + 10×0.3, per million
    assert row["cost_usd"] == Decimal("0.004758")


def test_cost_usd_on_the_line_wins_and_is_rounded_to_ten_places() -> None:
    line = validate_transcript_line(_line(costUSD=0.123456789012345))
    assert transcript_row(line, SOURCE, 0, 1)["cost_usd"] == Decimal("0.1234567890")


def test_defaults_for_a_bare_line() -> None:
    source = TranscriptSource(file="/x/projects/y/sess-file.jsonl", project="y")
    row = transcript_row(validate_transcript_line({"type": "summary"}), source, 0, 10)
    assert row["session_id"] == "sess-file"  # the file stem
    assert row["timestamp"] == EPOCH
    assert row["file_first_ts"] == UNKNOWN_FIRST_TS
    assert (row["message_id"], row["request_id"], row["model"], row["uuid"]) == ("", "", "", "")
    assert (row["has_usage"], row["input_tokens"], row["cost_usd"]) == (0, 0, Decimal(0))
    assert row["tool_uses"] == ()


def test_unknown_model_costs_zero_and_synthetic_too() -> None:
    line = _line()
    line["message"]["model"] = "<synthetic>"
    row = transcript_row(validate_transcript_line(line), SOURCE, 0, 1)
    assert row["cost_usd"] == 0
    assert row["model"] == "<synthetic>"


@pytest.mark.parametrize("fast", [False, True])
def test_calculated_costs_are_money_of_the_line_cost_for_every_priced_model(fast: bool) -> None:
    # usage_costs skips money() for a model whose rates cannot give more than ten places: the
    # same Decimal, exponent included, as when it called it.
    from ingestor.rows.records import usage_costs
    from ingestor.usage.prices import line_cost, price_table

    table = price_table()
    tokens_seen = [(1, 1, 0, 0, 0, 0), (3, 37, 25375, 152672, 25375, 0), (250_001, 7, 0, 0, 0, 0)]
    tokens_seen.append((999_999, 333_333, 210_000, 1_234_567, 10_000, 200_000))
    for model in table.models:
        for tokens in tokens_seen:
            calculated = line_cost(
                table, model, input_tokens=tokens[0], output_tokens=tokens[1],
                cache_write_5m=tokens[4], cache_write_1h=tokens[5], cache_read=tokens[3],
                fast=fast,
            )  # fmt: skip
            assert calculated is not None
            got = usage_costs(model, tokens, "fast" if fast else "", None)[2]
            assert str(got) == str(money(calculated)), (model, tokens)


def _event(**extra: Any) -> dict[str, Any]:
    return {
        "event_id": "e1",
        "project_id": "p",
        "timestamp": "2025-01-01T00:00:00Z",
        "cost_usd": "0.00000000001",
        **extra,
    }


def test_prompt_call_rows_keep_sizes_not_text() -> None:
    event = validate_event(
        _event(event_type="prompt_call", prompt_chars=10, response_chars=20, prompt="secret")
    )
    rows = event_rows(event)
    assert list(rows) == ["events"]
    (row,) = rows["events"]
    assert (row["prompt_chars"], row["response_chars"], row["finish_reason"]) == (10, 20, "")
    assert "secret" not in repr(row)
    assert row["cost_usd"] == Decimal("0E-10")
    assert (row["user_id"], row["latency_ms"], row["status"]) == ("", None, "success")


def test_tool_call_and_agent_step_get_rows_of_their_own() -> None:
    tool = event_rows(validate_event(_event(event_type="tool_call", tool_name="grep")))
    assert tool["tool_calls"][0]["tool_name"] == "grep"
    assert tool["events"][0]["attributes"] == {"tool_name": "grep", "tool_call_id": ""}
    assert "event_type" not in tool["tool_calls"][0]
    step = event_rows(
        validate_event(_event(event_type="agent_step", step_number=3, step_name="plan"))
    )
    assert (step["agent_steps"][0]["step_number"], step["agent_steps"][0]["step_type"]) == (
        3,
        "other",
    )


def test_threshold_attributes_keep_decimals_exact() -> None:
    event = validate_event(
        _event(event_type="cost_threshold_exceeded", threshold_usd="0.1", actual_usd=0.3)
    )
    attributes = event_rows(event)["events"][0]["attributes"]
    assert attributes == {
        "threshold_usd": "0.1", "actual_usd": "0.3", "window": "1d",
        "budget": "", "scope": "", "subject": "", "window_start": "",
    }  # fmt: skip


def test_ledger_row() -> None:
    entry = validate_ledger(
        {
            "request_id": "r",
            "user_id": "u",
            "provider_id": "anthropic",
            "model_id": "m",
            "created_at": "2025-01-01T00:00:00Z",
            "vendor_cost": "0.00001234",
            "credits_deducted": 3,
            "margin_multiplier": "1.5",
            "gross_margin_usd": "-0.5",
            "status": "failed",
        }
    )
    row = ledger_row(entry)
    assert row["vendor_cost"] == Decimal("0.00001234")
    assert row["gross_margin_usd"] == Decimal("-0.5")
    assert (row["status"], row["input_tokens"]) == ("failed", 0)


def test_dead_letter_in_a_file_is_keyed_by_its_file_position() -> None:
    where = Location(topic="t", partition=3, offset=77, index=4, file="/f.jsonl", file_offset=900)
    dead = DeadLetter.of(
        "transcript",
        InvalidRecord("bad", "message.usage", where),
        {"type": "user", "message": {"content": "text"}},
        max_bytes=100,
        raw_sha256="ab" * 32,
        raw_length=11,
        source_generation=1,
        source_length=12,
    )
    at = datetime(2025, 1, 1, tzinfo=UTC)
    row = dead_letter_row(dead, dead_at=at)
    assert row == {
        "kind": "transcript", "topic": "", "partition": 0, "offset": 0, "idx": 0,
        "source_file": "/f.jsonl", "source_generation": 1, "source_offset": 900,
        "source_length": 12, "reason": "bad", "field": "message.usage",
        "raw": '{"type":"user","message":{"content":"<string>"}}',
        "raw_sha256": "ab" * 32, "raw_length": 11, "dead_at": at,
    }  # fmt: skip


def test_dead_letter_without_a_file_is_keyed_by_kafka_coordinates() -> None:
    where = Location(topic="t", partition=3, offset=77, index=4)
    dead = DeadLetter.of("event", InvalidRecord("bad", None, where), {"a": 1}, max_bytes=100)
    row = dead_letter_row(dead)
    assert (row["topic"], row["partition"], row["offset"], row["idx"]) == ("t", 3, 77, 4)
    assert (row["source_file"], row["field"], row["raw"]) == ("", "", '{"a":1}')
    assert row["dead_at"].tzinfo is not None


def test_money_rounds_half_even_only_past_ten_places() -> None:
    assert money(Decimal("0.00000000005")) == Decimal("0E-10")
    assert money(Decimal("0.00000000015")) == Decimal("0.0000000002")
    assert str(money(Decimal("1.5"))) == "1.5"


def test_rows_are_not_tracked_by_the_collector() -> None:
    # Rows wait in batches by the tens of thousands: a tracked one is walked by every full
    # collection of the worker (a dict holding only untracked values is untracked itself).
    import gc

    from ingestor.rows.fast import fast_transcript_row

    data = {
        "type": "assistant", "sessionId": "s", "uuid": "u", "requestId": "r",
        "timestamp": "2025-01-01T00:00:00Z", "version": "2.0.0",
        "message": {"id": "m", "model": "claude-sonnet-4-20250514", "tool_uses": ["Bash"],
                    "usage": {"input_tokens": 1, "output_tokens": 2}},
    }  # fmt: skip
    source = TranscriptSource(file="/p/projects/x/s.jsonl", project="x", scope="h")
    fast = fast_transcript_row(data, source, 0, 10)
    slow = transcript_row(validate_transcript_line(data), source, 0, 10)
    assert fast is not None and fast == slow
    gc.collect()  # a fresh tuple is tracked until the collector first sees it holds atoms
    assert not gc.is_tracked(fast) and not gc.is_tracked(slow)
