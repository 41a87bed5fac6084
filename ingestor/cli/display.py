"""Where ``ingestor up``'s progress goes: a ``rich`` live display on a terminal, else plain lines.

The text comes from ``progress.py``; this module only decides how often and where it is drawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from ingestor.cli.progress import Snapshot, plain_line, screen_lines

__all__ = ["Display"]

PLAIN_EVERY_S = 5.0


class Display:
    """``show(snapshot)`` as often as wanted; ``say(text)`` for a message above the display."""

    def __init__(self, out: TextIO | None = None, *, live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self._last_plain = 0.0
        self._live: Any = None
        if self.live:
            from rich.console import Console

            self._console = Console(file=self.out)

    def show(self, snapshot: Snapshot, *, force: bool = False) -> None:
        self.show_lines(
            lambda width: screen_lines(snapshot, width=width), plain_line(snapshot), force=force
        )

    def show_lines(
        self, render: Callable[[int], list[str]], plain: str, *, force: bool = False
    ) -> None:
        """``render(width)`` on a terminal, else ``plain`` every ``PLAIN_EVERY_S`` (or now)."""
        if self.live:
            from rich.text import Text

            width = min(self._console.width, 200)
            text = Text("\n".join(render(width)))
            if self._live is None:  # started on first use: what comes before prints plainly
                from rich.live import Live

                self._live = Live(text, console=self._console, auto_refresh=False)
                self._live.start()
            self._live.update(text, refresh=True)
            return
        now = time.monotonic()
        if force or now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            print(plain, file=self.out, flush=True)

    def say(self, text: str) -> None:
        if self.live:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.live = False

    def __enter__(self) -> Display:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
