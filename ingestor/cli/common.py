"""What several commands share: finding the broker, tuning the streaming processes."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from typing import NoReturn

from ingestor.errors import ConfigError
from ingestor.settings import Settings

__all__ = ["resolve_bootstrap", "tune_gc"]


def resolve_bootstrap(args: argparse.Namespace, settings: Settings) -> str:
    """``--bootstrap``, else ``INGESTOR_KAFKA_BOOTSTRAP``; a ConfigError when neither is set."""
    bootstrap: str | None = args.bootstrap or settings.kafka_bootstrap
    if not bootstrap:
        raise ConfigError(
            "no broker: pass --bootstrap or set INGESTOR_KAFKA_BOOTSTRAP (or use `ingestor up`)"
        )
    return bootstrap


def tune_gc() -> None:
    """For the long-running streaming processes: collect far less often.

    They allocate many short-lived dicts per line and keep few cycles; CPython's default gen-0
    threshold (700) made their hot loops 2–3x slower (measured on the worker and the watcher).
    """
    gc.freeze()  # what start-up loaded is never collected again
    gc.set_threshold(200_000, 20, 20)


def exit_at_once(code: int) -> NoReturn:
    """Flush the output and leave without the interpreter's teardown: with chdb, pyarrow and
    Faust loaded it takes 0.15-0.3 s, which ``up`` spends waiting (the next step needs this
    process gone). Only once ClickHouse is closed: nothing is left to write but the output."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
