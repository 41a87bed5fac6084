"""Which project and session a transcript file belongs to, as ccusage names them. Pure.

ccusage 20.x (``adapter/claude/paths.rs``: ``extract_project``, ``extract_session_parts``)
reads both from the file's path, never from the lines: the session is the file
(``projects/<project>/<session>.jsonl``), or the directory a nested or subagent file sits in
(``projects/<project>/<session>/subagents/<agent>.jsonl``). Path parts are counted from the
first directory named ``projects``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import PurePosixPath

__all__ = ["project_of", "session_parts"]

_PROJECTS = "projects"


def _parts(path: str) -> list[str]:
    parts = path.split("/")
    if parts[0] == "":  # absolute: the root is not a part
        del parts[0]
    if "" in parts or "." in parts:  # what PurePosixPath collapses: let it (4x slower)
        return [part for part in PurePosixPath(path).parts if part != "/"]
    return parts


@lru_cache(maxsize=65536)
def project_of(path: str) -> str:
    """The directory after the first ``projects`` (``unknown`` when there is none or blank)."""
    parts = _parts(path)
    if _PROJECTS in parts:
        index = parts.index(_PROJECTS)
        if index + 1 < len(parts):
            part = parts[index + 1]
            return part if part.strip() else "unknown"
    return "unknown"


@lru_cache(maxsize=65536)
def session_parts(path: str) -> tuple[str, str]:
    """``(sessionId, projectPath)`` as ccusage's ``session --json`` prints them."""
    parts = _parts(path)
    relative = parts[parts.index(_PROJECTS) + 1 :] if _PROJECTS in parts else parts
    last = relative[-1] if relative else ""
    stem = last[: -len(".jsonl")] if last.endswith(".jsonl") else None
    if len(relative) == 2 and stem:
        return stem, relative[0]
    if len(relative) >= 4 and relative[-2] == "subagents":
        project_path = "/".join(relative[:-3])
        return relative[-3], project_path or "Unknown Project"
    session = relative[-2] if len(relative) >= 2 else (relative[0] if relative else "unknown")
    project_path = "/".join(relative[:-2]) if len(relative) > 2 else "Unknown Project"
    return session, project_path
