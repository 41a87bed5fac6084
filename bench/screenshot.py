"""``python -m bench.screenshot URL OUT.png``: a running worker's dashboard, as a PNG.

Opens ``URL`` (the worker's ``/dashboard/``) in headless Chromium (``$INGESTOR_CHROMIUM``, else
``chromium`` on the PATH; Playwright drives it, no browser download), waits for the page's first
full refresh (every report loaded and drawn), and writes a full-page screenshot. Exit 0 with the
path printed; 1 with the reason when no Chromium or Playwright is there, the page does not load
in ``--timeout`` seconds, or it logged a console error. ``bench.e2e --screenshot`` calls this
once the corpus is stored, before it stops the worker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

__all__ = ["main", "screenshot"]


class ScreenshotError(Exception):
    pass


def chromium() -> str:
    path = os.environ.get("INGESTOR_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise ScreenshotError("no Chromium: apt-get install chromium, or set INGESTOR_CHROMIUM")
    return path


def screenshot(url: str, out: Path, *, timeout_s: float = 300.0, width: int = 1500) -> Path:
    """Write ``url``'s dashboard to ``out`` once drawn; ``ScreenshotError`` says why not."""
    executable = chromium()
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        raise ScreenshotError("playwright is not installed (pip install playwright)") from exc
    # Drawn once is enough: a long interval keeps the page from asking the worker again.
    page_url = url + ("&" if "?" in url else "?") + "refresh=3600"
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1250})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(page_url, timeout=timeout_s * 1000)
            page.wait_for_function(
                "() => window.dashboard && window.dashboard.refreshes >= 1",
                timeout=timeout_s * 1000,
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        except Error as exc:
            raise ScreenshotError(f"{url}: {str(exc).splitlines()[0]}") from exc
        finally:
            browser.close()
    if problems:
        raise ScreenshotError(f"{url}: console errors: {problems[:3]}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.screenshot", description=__doc__.split("\n")[0]
    )
    p.add_argument("url", help="the dashboard, e.g. http://127.0.0.1:6066/dashboard/")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the page to draw")
    p.add_argument("--width", type=int, default=1500, help="viewport width in pixels")
    args = p.parse_args(argv)
    try:
        path = screenshot(args.url, args.out, timeout_s=args.timeout, width=args.width)
    except ScreenshotError as exc:
        print(f"no screenshot: {exc}", file=sys.stderr)
        return 1
    print(f"dashboard screenshot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
