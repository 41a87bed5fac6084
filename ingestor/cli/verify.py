"""``ingestor verify [DIR...]``: recompute the totals from the files and compare with ClickHouse.

Exit 0 when ClickHouse holds exactly what the files say (per file: lines stored, dead letters,
usage lines and tokens; per session: counted entries, tokens, cost), 1 on a mismatch (each
difference named), 2 on a usage error. Run it on files that are not being written: a line
appended since the last ingest is a (true) difference. While ``ingestor up`` holds the embedded
ClickHouse, its worker answers ClickHouse's side (``GET /verify/``).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestor.errors import ConfigError, StorageError
from ingestor.settings import Settings, default_watch_dirs, load_settings

if TYPE_CHECKING:
    from ingestor.corpus.reference import FileTally
    from ingestor.report.verify import SessionTally

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="compare ClickHouse with the transcript files (exit 1 on a mismatch)",
        description="Recompute what the transcript files hold with the product's own rules "
        "(ccusage's acceptance and dedup) and compare it with ClickHouse, per file and per "
        "session; print the accuracy ratio and the undercount, name every difference, and exit "
        "1 on a mismatch. Give the directories `ingestor up` watched. The embedded ClickHouse "
        "admits one process: while `ingestor up` runs, its worker answers ClickHouse's side.",
    )
    p.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        help="the watched directories (default: as `ingestor up`: ~/.claude/projects, or each "
        "projects/ under $CLAUDE_CONFIG_DIR)",
    )
    p.add_argument("--show", type=int, default=20, help="differences listed (default 20)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ingestor.corpus.reference import Reference
    from ingestor.report.verify import compare, stored_files, stored_sessions
    from ingestor.sink.engine import open_clickhouse

    settings = load_settings()
    dirs = [d.expanduser().resolve() for d in (args.dirs or default_watch_dirs())]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise ConfigError(f"not a directory: {', '.join(missing)}")
    target = settings.clickhouse
    if target.kind == "chdb" and target.path is not None and not target.path.is_dir():
        raise ConfigError(f"no data yet in {settings.data_dir}: run `ingestor up` first")
    reference = Reference.load_dirs(dirs)
    try:
        ch = open_clickhouse(target)
    except StorageError as exc:
        if target.kind != "chdb":
            raise
        # Most likely the running worker holds the embedded engine: ask it instead.
        try:
            files, sessions = _from_worker(settings, dirs)
            print(f"ClickHouse's side from the running worker ({settings.web_port})", flush=True)
        except OSError:
            raise ConfigError(
                f"cannot open the embedded ClickHouse in {target.path}, and no worker answers on "
                f"{settings.web_host}:{settings.web_port}"
            ) from exc
    else:
        with ch:
            files = stored_files(ch, [str(d) for d in dirs])
            sessions = stored_sessions(ch, files)
    verdict = compare(reference, files, sessions)
    print("\n".join(verdict.lines_out(args.show)), flush=True)
    return 0 if verdict.ok else 1


def _from_worker(
    settings: Settings, dirs: list[Path]
) -> tuple[dict[str, FileTally], dict[str, SessionTally]]:
    """ClickHouse's side, asked of the running worker (``GET /verify/``). Raises ``OSError``."""
    from ingestor.corpus.reference import FileTally
    from ingestor.report.verify import SessionTally

    query = urllib.parse.urlencode([("dir", str(d)) for d in dirs])
    url = f"http://{settings.web_host}:{settings.web_port}/verify/?{query}"
    try:
        with urllib.request.urlopen(url, timeout=600) as reply:
            body = json.loads(reply.read())
    except ValueError as exc:
        raise OSError(f"the worker's answer is not JSON: {exc}") from exc
    files = {f: FileTally(*map(int, t)) for f, t in body["files"].items()}
    sessions = {
        s: SessionTally(int(t[0]), int(t[1]), Decimal(t[2])) for s, t in body["sessions"].items()
    }
    return files, sessions
