"""What acceptance answers: a read usage line, or the ccusage rule that drops it. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Rejected", "Rule", "UsageLine"]

_U64_MAX = 2**64 - 1


class Rule(StrEnum):
    """One member per reason ccusage 20.0.24 skips a line that has ``message.usage``.

    Values are stable names (they land in dead-letter records and metrics).
    """

    NO_USAGE_MARKER = "no_usage_marker"  # no literal ``"usage":{`` bytes (e.g. ``"usage": {``)
    NULL_FIELD = "null_field"  # the ``:null`` byte scan hit a listed field name
    INVALID_JSON = "invalid_json"  # not one JSON value (syntax, BOM, trailing bytes, control chars)
    INVALID_STRING = "invalid_string"  # lone surrogate / invalid UTF-8 in a string serde decodes
    NUMBER_OUT_OF_RANGE = "number_out_of_range"  # a decoded number overflows f64 (``1e400``)
    TOO_DEEP = "too_deep"  # nesting past serde_json's 128 levels (daily, or a line with null)
    FIELD_TYPE = "field_type"  # serde type error (wrong JSON type, negative/float/-0 token, …)
    MISSING_FIELD = "missing_field"  # a required struct field is absent
    DUPLICATE_FIELD = "duplicate_field"  # a known struct key twice (any key, if the line has null)
    BAD_TIMESTAMP = "bad_timestamp"  # ``parse_ts_timestamp`` refuses it
    VERSION_NOT_SEMVER = "version_not_semver"
    EMPTY_SESSION_ID = "empty_session_id"
    EMPTY_REQUEST_ID = "empty_request_id"
    EMPTY_MESSAGE_ID = "empty_message_id"
    EMPTY_MODEL = "empty_model"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A usage line ccusage skips; ``detail`` names the field and why, never a value of the line."""

    rule: Rule
    detail: str


@dataclass(frozen=True, slots=True)
class UsageLine:
    """What ccusage reads from an accepted line (``UsageEntry`` plus the derived reset time)."""

    timestamp_ms: int  # Unix epoch milliseconds, UTC
    session_id: str | None
    version: str | None
    request_id: str | None
    message_id: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    ephemeral_5m: int | None  # None when the line has no ``cache_creation`` object
    ephemeral_1h: int | None
    speed: str | None  # "standard" | "fast"
    cost_usd: float | None
    is_sidechain: bool | None
    is_api_error_message: bool | None
    usage_limit_reset_ms: int | None

    @property
    def cache_creation_tokens(self) -> int:
        """ccusage's ``cache_creation_token_count``: the ephemeral split wins when present."""
        if self.ephemeral_5m is not None and self.ephemeral_1h is not None:
            # The 20.0.24 binary saturates this sum at u64::MAX (the source adds unchecked).
            return min(self.ephemeral_5m + self.ephemeral_1h, _U64_MAX)
        return self.cache_creation_input_tokens
