"""One logging set-up for every ``ingestor`` process (``cli/main.py`` calls it first).

``INGESTOR_LOG_FORMAT=json`` writes one JSON object a line (``ts``, ``level``, ``logger``,
``msg``, ``run_id``, ``pid``, and ``exc`` with the traceback); otherwise the human format. The
run id comes from ``INGESTOR_RUN_ID``, set here when absent: ``ingestor up`` sets it once and
its worker and watcher inherit it through their environment, so every line of one run, in every
process, carries the same id. (It is not the worker's insert-token id, which must be new for
every worker process.)

Secrets never reach a log line: every formatted line, traceback included, has the values of
``INGESTOR_*PASSWORD*``/``*SECRET*``/``*TOKEN*`` variables and the password in
``INGESTOR_CLICKHOUSE_URL`` replaced by ``***`` — whoever logged them (Faust, aiokafka, us).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

import orjson

__all__ = ["JsonFormatter", "RedactingFormatter", "run_id", "secrets_in", "setup_logging"]

RUN_ID_ENV = "INGESTOR_RUN_ID"
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN")
_MIN_SECRET = 4  # shorter values would blank out ordinary text; such a secret is no secret
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_id() -> str:
    """This run's id, created (and exported to children) on first use."""
    return os.environ.setdefault(RUN_ID_ENV, uuid.uuid4().hex[:16])


def secrets_in(env: Mapping[str, str]) -> list[str]:
    """The secret values in ``env``, longest first (so a longer one is replaced whole)."""
    found: set[str] = set()
    for name, value in env.items():
        if not name.startswith("INGESTOR_"):
            continue
        if any(word in name for word in _SECRET_WORDS) and not name.endswith("_FILE"):
            found.add(value)
        if name == "INGESTOR_CLICKHOUSE_URL":
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found |= {password, unquote(password)}
    # As a repr shows them too (a config dict logged with %r escapes quotes and backslashes).
    found |= {repr(s)[1:-1] for s in found}
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = list(secrets)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(RedactingFormatter):
    def __init__(self, secrets: Iterable[str], run: str) -> None:
        super().__init__(secrets)
        self._run = run

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "run_id": self._run,
            "pid": record.process,
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exc"] = record.exc_text
        # Redact inside the values, before escaping: a secret with a quote or backslash would
        # not match its JSON-escaped form.
        clean = {k: self.redact(v) if isinstance(v, str) else v for k, v in body.items()}
        return orjson.dumps(clean).decode()


def setup_logging(
    level: int, *, fmt: str | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Replace the root logger's handlers by one on ``stream`` (stderr) at ``level``.

    ``fmt``: "json" or "text"; default ``INGESTOR_LOG_FORMAT`` (an unknown value: text, so a bad
    setting never costs the logs that would report it).
    """
    fmt = fmt or os.environ.get("INGESTOR_LOG_FORMAT", "text").strip().lower()
    secrets = secrets_in(os.environ)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(secrets, run_id())
    else:
        run_id()  # children inherit it whatever their format
        formatter = RedactingFormatter(secrets, _TEXT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
