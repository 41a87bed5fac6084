"""``fast_transcript_row`` either declines (None) or builds exactly the model path's row."""

from __future__ import annotations

import copy
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestor.corpus.generate import generate
from ingestor.errors import InvalidRecord
from ingestor.models import strip_line, validate_transcript_line
from ingestor.rows.fast import fast_transcript_row
from ingestor.rows.records import transcript_row
from ingestor.wire import TranscriptSource

SOURCE = TranscriptSource(
    file="/home/u/.claude/projects/-proj/abc-123.jsonl",
    project="-proj",
    generation=2,
    first_ts="2025-01-01T08:00:00.500Z",
    scope="host",
)


def _slow(data: Any) -> dict[str, Any] | None:
    """The model path's row, or None when the model rejects the line."""
    try:
        line = validate_transcript_line(data)
    except InvalidRecord:
        return None
    return transcript_row(line, SOURCE, 10, 20)


def _identical(fast: dict[str, Any], slow: dict[str, Any]) -> None:
    assert list(fast) == list(slow)
    for key, value in slow.items():
        assert type(fast[key]) is type(value), key
        assert fast[key] == value, key
    # Decimal equality ignores the exponent; the stored value must not.
    assert str(fast["cost_usd"]) == str(slow["cost_usd"])
    assert fast["timestamp"].tzinfo is slow["timestamp"].tzinfo
    assert fast["timestamp"].utcoffset() == slow["timestamp"].utcoffset()
    assert all(type(name) is str for name in fast["tool_uses"])


def check(data: Any) -> dict[str, Any] | None:
    """Assert the contract on ``data``; return the fast row (None when it declined)."""
    before = copy.deepcopy(data)
    fast = fast_transcript_row(data, SOURCE, 10, 20)
    assert data == before  # the input is not touched
    slow = _slow(data)
    if fast is not None:
        assert slow is not None, "fast path accepted a line the model rejects"
        _identical(fast, slow)
    return fast


def _corpus(tmp_path: Path, seed: int) -> list[Any]:
    generate(tmp_path, lines=5000, seed=seed)
    out: list[Any] = []
    for path in sorted((tmp_path / "projects").rglob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                # What the worker decodes: the watcher's stripped line after the wire round trip.
                out.append(orjson.loads(orjson.dumps(strip_line(obj))))
    return out


@pytest.mark.parametrize("seed", [1, 7])
def test_corpus_lines_equal_or_declined_and_mostly_taken(tmp_path: Path, seed: int) -> None:
    lines = _corpus(tmp_path, seed)
    valid = taken = with_usage = 0
    for data in lines:
        fast = check(data)
        if _slow(data) is not None:
            valid += 1
            taken += fast is not None
            with_usage += fast is not None and fast["has_usage"] == 1
    assert valid > 4000
    assert taken > 0.9 * valid
    assert with_usage > 0.5 * taken


def _line(**top: Any) -> dict[str, Any]:
    return {
        "type": "assistant",
        "timestamp": "2025-01-02T03:04:05.678Z",
        "sessionId": "sess",
        "uuid": "u1",
        "parentUuid": "u0",
        "requestId": "req_1",
        "isSidechain": False,
        "cwd": "/w",
        "version": "2.0.1",
        "message": {
            "id": "msg_1",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 20,
                "cache_creation_input_tokens": 300,
                "cache_read_input_tokens": 4000,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 100,
                    "ephemeral_1h_input_tokens": 200,
                },
                "service_tier": "standard",
            },
            "tool_uses": ["Bash", "Read"],
        },
        **top,
    }


def _with_usage(**fields: Any) -> dict[str, Any]:
    data = _line()
    data["message"]["usage"].update(fields)
    return data


def test_the_common_shape_is_taken() -> None:
    row = check(_line())
    assert row is not None
    assert row["cost_usd"] > 0
    assert check({"type": "summary", "summary": "x", "leafUuid": "u"}) is not None
    assert check(_line(costUSD=0.0123)) is not None
    assert check(_line(costUSD=2)) is not None
    assert check(_line(timestamp="2025-01-02T03:04:05+02:00")) is not None
    assert check(_line(message=None)) is not None
    assert check(_line(extra={"anything": [1, 2]}, isMeta=True)) is not None  # ignored by both


BAD_TOKENS = [True, False, 1.0, -1, 2**63, 2**70, "5", None, [1], {"n": 1}]


@pytest.mark.parametrize("value", BAD_TOKENS)
@pytest.mark.parametrize(
    "field",
    ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"],
)
def test_odd_token_values_are_declined(field: str, value: Any) -> None:
    assert check(_with_usage(**{field: value})) is None


@pytest.mark.parametrize("value", [*BAD_TOKENS, 0, 5])
@pytest.mark.parametrize("field", ["ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"])
def test_nested_cache_creation(field: str, value: Any) -> None:
    data = _line()
    data["message"]["usage"]["cache_creation"][field] = value
    accepted = type(value) is int and 0 <= value < 2**63
    assert (check(data) is not None) == accepted


@pytest.mark.parametrize(
    "cache_creation", [None, {}, {"other": 1}, [], "x", 0, {"ephemeral_5m_input_tokens": 0}]
)
def test_cache_creation_shapes(cache_creation: Any) -> None:
    check(_with_usage(cache_creation=cache_creation))


@pytest.mark.parametrize("drop", ["input_tokens", "output_tokens", "cache_read_input_tokens"])
def test_missing_usage_fields(drop: str) -> None:
    data = _line()
    del data["message"]["usage"][drop]
    check(data)


@pytest.mark.parametrize(
    "timestamp",
    [
        "2025-01-02T03:04:05Z",
        "2025-01-02T03:04:05.1Z",
        "2025-01-02T03:04:05.123456Z",
        "2025-01-02T03:04:05.1234567Z",
        "2025-01-02T03:04:05+02:00",
        "2025-01-02T03:04:05-07:30",
        "2025-01-02T03:04:05+0200",
        "2025-01-02T03:04:05+02",
        "2025-01-02T03:04:05",  # naive
        "2025-01-02 03:04:05Z",
        "2025-01-02t03:04:05z",
        "2025-01-02",
        "2025-01-02T03:04Z",
        "2025-01-02T24:00:00Z",
        "2025-01-02T23:59:60Z",
        "2025-02-30T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "２０２５-01-02T03:04:05Z",
        "",
        "not a time",
        1735787045,
        1735787045.5,
        None,
        True,
    ],
)
def test_timestamps(timestamp: Any) -> None:
    for data in (_line(timestamp=timestamp), {"type": "user", "timestamp": timestamp}):
        try:
            check(data)
        except OverflowError:
            # The model path lets astimezone's OverflowError out; the fast path declined.
            assert fast_transcript_row(data, SOURCE, 10, 20) is None


def test_timestamp_offsets_grid() -> None:
    for hh, mm, sign in itertools.product(range(0, 30), (0, 1, 30, 59, 60, 99), "+-"):
        check(_line(timestamp=f"2025-01-02T03:04:05{sign}{hh:02d}:{mm:02d}"))


def test_usage_without_timestamp_is_declined() -> None:
    data = _line()
    del data["timestamp"]
    assert check(data) is None
    assert _slow(data) is None
    assert check(_line(timestamp=None)) is None


@pytest.mark.parametrize(
    "cost",
    [True, False, "1.5", "0", -1, -0.5, -0.0, 0, 0.0, 1e-20, 1e300, 2**63, 2**70,
     float("nan"), float("inf"), float("-inf"), 0.1, 123.456789012345, None, [1]],
)  # fmt: skip
def test_cost_usd(cost: Any) -> None:
    check(_line(costUSD=cost))
    check({"type": "user", "costUSD": cost})


@pytest.mark.parametrize(
    "key",
    ["session_id", "parent_uuid", "request_id", "is_sidechain", "is_api_error_message", "cost_usd"],
)
def test_snake_case_aliases_are_left_to_the_model(key: str) -> None:
    assert check(_line(**{key: "x"})) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("type", None), ("type", 1), ("sessionId", 5), ("uuid", ["u"]), ("requestId", False),
        ("isSidechain", 1), ("isSidechain", "true"), ("isSidechain", None),
        ("isApiErrorMessage", 0), ("cwd", b"/w"), ("version", 2.0), ("sessionId", ""),
        ("isSidechain", True), ("isApiErrorMessage", True),
    ],
)  # fmt: skip
def test_top_level_types(key: str, value: Any) -> None:
    check(_line(**{key: value}))


def test_missing_type() -> None:
    data = _line()
    del data["type"]
    assert check(data) is not None  # ccusage does not read it: the line still counts


@pytest.mark.parametrize(
    "message",
    [
        "text", 1, [], ["x"], True,
        {"content": "hi"},
        {"content": [{"type": "tool_use", "name": "Bash"}], "id": "m"},
        {"id": 1}, {"model": None}, {"model": 3}, {"usage": None}, {"usage": "x"}, {"usage": []},
        {"tool_uses": None}, {"tool_uses": "Bash"}, {"tool_uses": ("Bash",)}, {"tool_uses": [1]},
        {"tool_uses": []}, {"other": 1}, {},
    ],
)  # fmt: skip
def test_message_shapes(message: Any) -> None:
    check(_line(message=message))


@pytest.mark.parametrize("tier", [None, "", "priority", 1, False])
def test_service_tier(tier: Any) -> None:
    check(_with_usage(service_tier=tier))


@pytest.mark.parametrize("data", [None, [], "x", 1, (("type", "x"),)])
def test_not_a_dict(data: Any) -> None:
    assert check(data) is None


def test_invalid_input_never_gets_a_row() -> None:
    cases = [
        _with_usage(input_tokens=True),
        _with_usage(output_tokens=-3),
        _with_usage(cache_read_input_tokens=1.0),
        _line(costUSD=float("nan")),
        _line(costUSD=True),
        _line(timestamp=None),
        _line(timestamp="yesterday"),
        _line(isSidechain=None),
        _line(message="text"),
    ]
    for data in cases:
        with pytest.raises(InvalidRecord):
            validate_transcript_line(data)
        assert fast_transcript_row(data, SOURCE, 0, 0) is None


def test_costs_match_the_model_path_for_every_priced_model() -> None:
    for model in ["claude-opus-4-1", "claude-3-5-haiku-20241022", "<synthetic>", "gpt-4", "", None]:
        data = _line()
        data["message"]["model"] = model
        row = check(data)
        assert row is not None
        assert isinstance(row["cost_usd"], Decimal)
