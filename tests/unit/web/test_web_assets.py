"""The dashboard's packaged files: served from a fixed table, nothing fetched from elsewhere,
the vendored Chart.js the version ``tools/vendor_chartjs.py`` records."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from ingestor.web import PAGE, STATIC, asset, page_headers

REPO = Path(__file__).resolve().parents[3]


def _tool_version() -> str:
    text = (REPO / "tools" / "vendor_chartjs.py").read_text()
    found = re.search(r'^VERSION = "([\d.]+)"$', text, re.MULTILINE)
    assert found
    return found.group(1)


def test_the_vendored_chart_js_is_the_recorded_version_with_its_licence() -> None:
    build = asset("chart.umd.min.js")
    assert build is not None and build.content_type == "text/javascript"
    assert f"Chart.js v{_tool_version()}".encode() in build.body[:200]
    assert b"sourceMappingURL" not in build.body[-300:]  # the map is not shipped
    licence = asset("chart.js-LICENSE.md")
    assert licence is not None and b"MIT License" in licence.body


def test_the_page_loads_only_its_own_files() -> None:
    page = asset(PAGE)
    assert page is not None and page.content_type == "text/html"
    html = page.body.decode()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs
    for ref in refs:
        assert ref.startswith(("/dashboard/static/", "data:")), ref
        if ref.startswith("/dashboard/static/"):
            assert asset(ref.removeprefix("/dashboard/static/")) is not None, ref
    for name in ("dashboard.js", "dashboard.css"):
        found = asset(name)
        assert found is not None
        assert not re.search(rb"https?://", found.body), name
    assert "<script>" not in html  # the policy forbids inline scripts
    assert "script-src 'self'" in page_headers()["Content-Security-Policy"]


def test_names_outside_the_table_are_not_found() -> None:
    for name in ("../__init__.py", "__init__.py", "", ".", "static", "/etc/passwd", "INDEX.HTML"):
        assert asset(name) is None, name
    assert asset("dashboard.css") is not None


def test_every_static_file_is_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ingestor"]
    assert "web/static/*" in patterns
    assert all(p.is_file() for p in STATIC.iterdir())  # the glob takes files, no subdirectory
