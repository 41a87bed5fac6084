"""Budgets as configured: ``INGESTOR_BUDGETS``, a comma-separated list of
``SCOPE[=SUBJECT]:WINDOW:USD``. Pure.

* ``SCOPE`` is ``user``, ``project`` or ``session``; without ``=SUBJECT`` the budget applies to
  each user (project, session) on its own, with it to that one only.
* ``WINDOW`` is ``1h`` or ``1d``: tumbling windows aligned to UTC hours and days, by event time.
* ``USD`` is a decimal amount; the alert fires when a window's counted cost goes *above* it.

``session:1h:20,user:1d:100,project=checkout:1d:500`` alerts on any session spending more than
$20 in an hour, any user more than $100 in a day, and project ``checkout`` more than $500 a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args

__all__ = ["WINDOWS", "Budget", "Scope", "parse_budgets"]

Scope = Literal["user", "project", "session"]
WINDOWS = {"1h": 3600, "1d": 86400}


@dataclass(frozen=True, slots=True)
class Budget:
    scope: Scope
    window: str  # a key of WINDOWS
    limit_usd: Decimal
    subject: str | None = None  # None: every subject of the scope, each on its own

    @property
    def window_ms(self) -> int:
        return WINDOWS[self.window] * 1000

    @property
    def key(self) -> str:
        """The budget's identity, in its spec's form: part of each window's key and alert id, so
        a changed limit is a new budget (its windows start from nothing, its alerts are new)."""
        who = self.scope if self.subject is None else f"{self.scope}={self.subject}"
        return f"{who}:{self.window}:{self.limit_usd}"

    def applies_to(self, subject: str) -> bool:
        return bool(subject) and (self.subject is None or self.subject == subject)


def parse_budgets(spec: str) -> tuple[Budget, ...]:
    """The budgets of ``spec`` (see the module docstring); ``ValueError`` names a bad one."""
    out: list[Budget] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        who, sep, rest = item.partition(":")
        window, sep2, amount = rest.partition(":")
        scope, eq, subject = who.partition("=")
        if not (sep and sep2) or scope not in get_args(Scope) or (eq and not subject):
            raise ValueError(f"budget {item!r}: want SCOPE[=SUBJECT]:WINDOW:USD, SCOPE one of "
                             "user, project, session")  # fmt: skip
        if window not in WINDOWS:
            raise ValueError(f"budget {item!r}: window {window!r} is not one of 1h, 1d")
        try:
            limit = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"budget {item!r}: {amount!r} is not an amount of dollars") from None
        if not limit.is_finite() or limit < 0:
            raise ValueError(f"budget {item!r}: the amount must be a non-negative number")
        out.append(Budget(scope, window, limit, subject or None))  # type: ignore[arg-type]
    if len({b.key for b in out}) != len(out):
        raise ValueError("budgets: the same budget twice")
    return tuple(out)
