"""The real ccusage 20.0.24 binary, for tests that hold our rules equal to it.

``ccusage`` is, in order: ``$INGESTOR_CCUSAGE_BIN``; the native binary npm installed once into
``${XDG_CACHE_HOME:-~/.cache}/ingestor/ccusage-20.0.24``. When neither can be had (no npm, no
network, another platform) the tests that need it are skipped with the reason, never failed.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingestor.corpus.ccusage import CcusageUnavailable, ccusage_binary


@dataclass(frozen=True)
class Ccusage:
    """Runs one report of the binary over a directory holding ``projects/``."""

    binary: Path

    def report(
        self, kind: str, config_dir: Path, *, timezone: str = "UTC", args: tuple[str, ...] = ()
    ) -> Any:
        """``ccusage claude <kind> --json --offline -z <timezone> <args>``, parsed."""
        done = subprocess.run(
            [str(self.binary), "claude", kind, "--json", "--offline", "-z", timezone, *args],
            env={**os.environ, "CLAUDE_CONFIG_DIR": str(config_dir)},
            capture_output=True,
            timeout=120,
            check=True,
        )
        return json.loads(done.stdout)


@pytest.fixture(scope="session")
def ccusage() -> Ccusage:
    """The ccusage 20.0.24 binary, or a skip saying why it is not available."""
    try:
        return Ccusage(ccusage_binary())
    except CcusageUnavailable as why:
        pytest.skip(str(why))


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The environment for ``ingestor up`` on the embedded stack in ``data_dir`` (or a skip)."""
    import socket

    from ingestor.local.tansu import tansu_binary

    try:
        tansu_binary()
    except Exception as exc:  # noqa: BLE001 - any reason there is no broker binary
        pytest.skip(f"no embedded broker: {exc}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    return env | {
        "INGESTOR_DATA_DIR": str(data_dir),
        "INGESTOR_WEB_PORT": str(port),
        "INGESTOR_BROKER_SESSION_TIMEOUT_S": "6",
        "INGESTOR_DEDUP_SCOPE": "parity-host",
        "INGESTOR_DLQ_MAX_INVALID_RATIO": "1",
    }


def up_once(corpus: Path, env: dict[str, str]) -> None:
    """``ingestor up CORPUS/projects --once``, which must end well."""
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "ingestor.cli.main", "up", str(corpus / "projects"), "--once"],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
