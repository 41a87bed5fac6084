"""Vendor Chart.js from npm into ``ingestor/web/static/`` (the dashboard works offline: no CDN).

The package ships ``chart.umd.min.js`` (the minified UMD build, which sets ``window.Chart``) and
its licence beside it. To update, change ``VERSION`` and run

    python tools/vendor_chartjs.py

It runs ``npm pack chart.js@VERSION`` in a temporary directory (nothing installed), checks the
build's banner names that version, drops the trailing ``sourceMappingURL`` comment (the map is
not shipped, and a browser with developer tools open would ask for it), and copies the build
and ``LICENSE.md``. ``tests/unit/web/test_web_assets.py`` holds the vendored banner to ``VERSION``.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "4.6.1"
STATIC = Path(__file__).resolve().parents[1] / "ingestor" / "web" / "static"
BUILD = "chart.umd.min.js"
LICENSE = "chart.js-LICENSE.md"


def strip_source_map(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    if lines and lines[-1].startswith("//# sourceMappingURL="):
        lines.pop()
    return "\n".join(lines) + "\n"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["npm", "pack", f"chart.js@{VERSION}", "--silent"],
            cwd=tmp, check=True, capture_output=True, text=True,
        )  # fmt: skip
        tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "package"
        build = (package / "dist" / BUILD).read_text()
        if f"Chart.js v{VERSION}" not in build[:200]:
            print(f"{BUILD} does not announce v{VERSION}", file=sys.stderr)
            return 1
        (STATIC / BUILD).write_text(strip_source_map(build))
        (STATIC / LICENSE).write_text((package / "LICENSE.md").read_text())
    print(f"vendored Chart.js {VERSION} into {STATIC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
