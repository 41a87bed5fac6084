"""The real ccusage binary, for the parity tests and ``make bench``: found or installed once.

In order: ``$INGESTOR_CCUSAGE_BIN``; the native binary npm installed once into
``${XDG_CACHE_HOME:-~/.cache}/ingestor/ccusage-<CCUSAGE_VERSION>``; else npm installs it there.
When none of that can be had (no npm, no network, not linux-x64) ``ccusage_binary`` raises
``CcusageUnavailable`` saying why: the tests skip, the bench prints our figures alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["CCUSAGE_VERSION", "CcusageUnavailable", "ccusage_binary", "ccusage_cache_dir"]

CCUSAGE_VERSION = "20.0.24"
_NATIVE = Path("node_modules/@ccusage/ccusage-linux-x64/bin/ccusage")
_ENV_BIN = "INGESTOR_CCUSAGE_BIN"


class CcusageUnavailable(Exception):  # noqa: N818 - a reason to skip, not a failure
    """ccusage cannot be had here; the message says why."""


def ccusage_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ingestor" / f"ccusage-{CCUSAGE_VERSION}"


def ccusage_binary() -> Path:
    """The ccusage binary (installing it with npm once); raises ``CcusageUnavailable``."""
    if env := os.environ.get(_ENV_BIN, "").strip():
        binary = Path(env)
        if not binary.is_file():
            raise CcusageUnavailable(f"{_ENV_BIN}={env} is not a file")
        return binary
    cache = ccusage_cache_dir()
    binary = cache / _NATIVE
    if binary.is_file():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise CcusageUnavailable(
            f"ccusage {CCUSAGE_VERSION} not found: set {_ENV_BIN} or install npm"
        )
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(cache),
                f"ccusage@{CCUSAGE_VERSION}",
            ],
            capture_output=True,
            timeout=600,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as error:
        raise CcusageUnavailable(f"npm install ccusage@{CCUSAGE_VERSION} failed: {error}") from None
    if not binary.is_file():
        raise CcusageUnavailable(
            f"npm installed ccusage@{CCUSAGE_VERSION} without {_NATIVE} (not linux-x64?)"
        )
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary
