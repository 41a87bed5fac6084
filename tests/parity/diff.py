"""Field-by-field comparison of our report JSON with ccusage's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_COST_KEYS = {"totalCost", "cost", "costUSD", "costPerHour"}


def mismatches(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Every place the two JSON values differ (costs within a cent)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = (
            [f"{path}: keys {sorted(ours)} != {sorted(theirs)}"] if set(ours) != set(theirs) else []
        )
        for key in ours.keys() & theirs.keys():
            out += mismatches(ours[key], theirs[key], f"{path}.{key}")
        return out
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} items != {len(theirs)}"]
        return [
            m
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for m in mismatches(a, b, f"{path}[{i}]")
        ]
    key = path.rsplit(".", 1)[-1]
    if isinstance(ours, Decimal) or key in _COST_KEYS:
        if ours is None or theirs is None:
            return [] if ours is theirs else [f"{path}: {ours!r} != {theirs!r}"]
        ok = abs(Decimal(str(ours)) - Decimal(str(theirs))) < Decimal("0.01")
        return [] if ok else [f"{path}: {ours} != {theirs}"]
    if isinstance(ours, float) or isinstance(theirs, float):
        ok = (
            theirs is not None
            and ours is not None
            and abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))
        )
        return [] if ok else [f"{path}: {ours!r} != {theirs!r}"]
    if type(ours) is not type(theirs) or ours != theirs:
        return [f"{path}: {ours!r} != {theirs!r}"]
    return []
