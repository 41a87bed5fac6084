from __future__ import annotations

from decimal import Decimal

import pytest

from ingestor.alerts.budgets import Budget, parse_budgets
from ingestor.errors import ConfigError
from ingestor.settings import load_settings


def test_spec_parses_each_scope_window_and_subject() -> None:
    assert parse_budgets(" session:1h:20, user=alice:1d:100.50 ,project:1d:0,") == (
        Budget("session", "1h", Decimal(20)),
        Budget("user", "1d", Decimal("100.50"), "alice"),
        Budget("project", "1d", Decimal(0)),
    )
    assert parse_budgets("") == ()


@pytest.mark.parametrize(
    "spec",
    ["team:1h:5", "session:2h:5", "session:1h", "session:1h:-1", "session:1h:x", "user=:1d:5",
     "session:1h:nan", "session:1h:5,session:1h:5"],
)  # fmt: skip
def test_bad_specs_are_refused_by_name(spec: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budgets(spec)
    with pytest.raises(ConfigError, match="INGESTOR_BUDGETS"):
        load_settings(budgets=spec)


def test_a_budget_applies_to_its_subject_or_to_each() -> None:
    each, one = parse_budgets("user:1h:1,user=bob:1h:1")
    assert each.applies_to("alice") and each.applies_to("bob") and not each.applies_to("")
    assert one.applies_to("bob") and not one.applies_to("alice")
    assert (each.key, one.key) == ("user:1h:1", "user=bob:1h:1")
    assert (each.window_ms, parse_budgets("user:1d:1")[0].window_ms) == (3_600_000, 86_400_000)
