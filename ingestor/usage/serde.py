"""serde_json's view of a usage line: an exact parse and the derived structs it fills. Pure.

ccusage deserializes each line into Rust structs (``src/types.rs`` ``UsageEntry``; the daily
loader's ``DailyUsageLine`` in ``adapter/claude/daily.rs``). What serde accepts is not what a
permissive JSON reader accepts, so this module holds the differences in one place:

* ``parse_exact`` keeps what orjson drops: duplicate keys (serde refuses a known key twice),
  ``-0`` (serde reads it as a float, so a ``u64`` refuses it), integers past ``u64`` (floats to
  serde), ``1e400`` (an error where serde decodes it, ignored where it skips it), lone surrogates
  and invalid UTF-8 (errors only in strings serde decodes).
* ``decode`` walks a parsed tree against a struct spec as derive(Deserialize) would: maps or
  sequences (a derived struct also reads a JSON array, fields in declaration order), missing
  ``Option`` fields are None, ``#[serde(default)]`` fields default, unknown keys are ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

from ingestor.usage.verdict import Rule

__all__ = [
    "OPTIONAL",
    "REQUIRED",
    "Exact",
    "SerdeError",
    "Spec",
    "boolean",
    "decode",
    "f64",
    "option",
    "parse_exact",
    "speed",
    "string",
    "struct",
    "u64",
]

U64_MAX: Final = 2**64 - 1
_I64_MIN: Final = -(2**63)


class SerdeError(Exception):
    """serde would fail here; ``detail`` names the field path, never a value."""

    def __init__(self, rule: Rule, detail: str) -> None:
        super().__init__(rule, detail)
        self.rule = rule
        self.detail = detail


class _Obj(dict[str, Any]):
    """A JSON object from ``parse_exact``: last value wins, duplicates and bad keys remembered."""

    __slots__ = ("bad_keys", "dups")

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.dups: frozenset[str] = frozenset()
        self.bad_keys = False
        if len(self) != len(pairs):
            seen: set[str] = set()
            twice: set[str] = set()
            for key, _ in pairs:
                (twice if key in seen else seen).add(key)
            self.dups = frozenset(twice)
        self.bad_keys = any(_has_surrogate(k) for k, _ in pairs)


class Exact:
    """``parse_exact``'s result: the tree, and what a whole-line buffered parse would choke on."""

    __slots__ = ("bad_string", "duplicate", "out_of_range", "tree")

    def __init__(self, tree: object, bad_string: bool, out_of_range: bool, duplicate: bool) -> None:
        self.tree = tree
        self.bad_string = bad_string  # some string (value or key) is not valid Unicode
        self.out_of_range = out_of_range  # some number overflows f64
        self.duplicate = duplicate  # some object, anywhere, repeats a key


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _serde_int(raw: str) -> int | float:
    """serde_json's integer: u64 if it fits, i64 if negative and fits, else f64 (``-0`` too)."""
    if len(raw) > 40:
        return float(raw)
    value = int(raw)
    if raw[0] == "-":
        return value if _I64_MIN <= value < 0 else float(raw)
    return value if value <= U64_MAX else float(raw)


def _no_constant(name: str) -> object:
    raise ValueError(name)  # NaN / Infinity are not JSON to serde


def parse_exact(line: bytes) -> Exact | None:
    """Parse as serde_json would see it, or None when serde_json cannot parse it at all."""
    text = line.decode("utf-8", "surrogateescape")  # invalid bytes become lone surrogates
    flags = {"inf": False, "dup": False, "bad": False}

    def make_object(pairs: list[tuple[str, Any]]) -> _Obj:
        obj = _Obj(pairs)
        flags["dup"] = flags["dup"] or bool(obj.dups)
        flags["bad"] = flags["bad"] or obj.bad_keys
        return obj

    def parse_float(raw: str) -> float:
        value = float(raw)
        if math.isinf(value):
            flags["inf"] = True
        return value

    def parse_int(raw: str) -> int | float:
        value = _serde_int(raw)
        if isinstance(value, float) and math.isinf(value):
            flags["inf"] = True
        return value

    try:
        tree = json.loads(
            text,
            object_pairs_hook=make_object,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=_no_constant,
        )
    except (ValueError, RecursionError):
        return None
    suspect = not text.isascii() or "\\u" in text  # raw non-ASCII, or an escape, may be lone
    bad = flags["bad"] or (suspect and _any_bad_string(tree))
    return Exact(tree, bad, flags["inf"], flags["dup"])


def _any_bad_string(tree: object) -> bool:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _has_surrogate(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


# A struct field: (JSON name, decoder, default). REQUIRED; OPTIONAL (``Option<T>``: a missing map
# key reads None, a short array is an error); anything else is the ``#[serde(default)]`` value.
REQUIRED: Final = _Marker("required")
OPTIONAL: Final = _Marker("optional")
Decoder = Callable[[object, str], Any]
Spec = Sequence[tuple[str, Decoder, object]]


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "negative integer" if value < 0 else "integer past u64"
    if isinstance(value, float):
        return "number out of f64 range" if math.isinf(value) else "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(path: str, expected: str, value: object) -> SerdeError:
    if isinstance(value, float) and math.isinf(value):
        return SerdeError(Rule.NUMBER_OUT_OF_RANGE, f"{path}: number overflows f64")
    return SerdeError(Rule.FIELD_TYPE, f"{path}: expected {expected}, got {_kind(value)}")


def u64(value: object, path: str) -> int:
    if type(value) is int and 0 <= value <= U64_MAX:
        return value
    raise _type_error(path, "u64", value)


def f64(value: object, path: str) -> float:
    if type(value) is int:
        return float(value)
    if type(value) is float and not math.isinf(value):
        return value
    raise _type_error(path, "f64", value)


def string(value: object, path: str) -> str:
    if type(value) is not str:
        raise _type_error(path, "string", value)
    if _has_surrogate(value):
        raise SerdeError(Rule.INVALID_STRING, f"{path}: lone surrogate or invalid UTF-8")
    return value


def boolean(value: object, path: str) -> bool:
    if type(value) is bool:
        return value
    raise _type_error(path, "bool", value)


_SPEEDS: Final = frozenset({"standard", "fast"})


def speed(value: object, path: str) -> str:
    """``enum Speed { Standard, Fast }`` (lowercase): a string, or serde's ``{"fast": null}``."""
    if isinstance(value, dict):
        if len(value) == 1 and not getattr(value, "dups", ()):
            ((name, inner),) = value.items()
            if name in _SPEEDS and inner is None:
                return str(name)
        raise SerdeError(Rule.FIELD_TYPE, f"{path}: not a unit variant of standard|fast")
    name = string(value, path)
    if name not in _SPEEDS:
        raise SerdeError(Rule.FIELD_TYPE, f"{path}: unknown variant, expected standard|fast")
    return name


def option(inner: Decoder) -> Decoder:
    """``Option<T>``: JSON null is None, anything else must be a T."""

    def read(value: object, path: str) -> Any:
        return None if value is None else inner(value, path)

    return read


def struct(spec: Spec) -> Decoder:
    """A derive(Deserialize) struct read from an object or an array; returns {name: value}."""

    def read(value: object, path: str) -> Any:
        return decode(value, spec, path)

    return read


def _field_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def decode(value: object, spec: Spec, path: str = "") -> dict[str, Any]:
    """Fill ``spec`` from ``value`` as serde's derived visitor would, or raise ``SerdeError``."""
    out: dict[str, Any] = {}
    where = path or "line"
    if isinstance(value, dict):
        if isinstance(value, _Obj):
            if value.bad_keys:
                raise SerdeError(Rule.INVALID_STRING, f"{where}: a key is not valid Unicode")
            if value.dups and (twice := sorted(value.dups & {name for name, _, _ in spec})):
                raise SerdeError(Rule.DUPLICATE_FIELD, f"{where}: duplicate field {twice[0]}")
        for name, read, default in spec:
            field = _field_path(path, name)
            if name in value:
                out[name] = read(value[name], field)
            elif default is REQUIRED:
                raise SerdeError(Rule.MISSING_FIELD, f"{field}: missing")
            else:
                out[name] = None if default is OPTIONAL else default
        return out
    if isinstance(value, list):
        for index, (name, read, default) in enumerate(spec):
            field = _field_path(path, name)
            if index < len(value):
                out[name] = read(value[index], field)
            elif default is not REQUIRED and default is not OPTIONAL:
                out[name] = default
            else:
                raise SerdeError(Rule.MISSING_FIELD, f"{field}: array too short")
        if len(value) > len(spec):
            raise SerdeError(Rule.FIELD_TYPE, f"{where}: array longer than the struct")
        return out
    raise _type_error(where, "object", value)
