"""The tables ``make bench`` prints, from the figures ``bench/backfill.py`` measured. Pure."""

from __future__ import annotations

from typing import Any

__all__ = ["render", "table", "verdict"]

BACKFILL_RATIO_TARGET = 4.0  # ours / ccusage at 1M lines (issue #9); 2x next, 1x the goal
FIXED_COST_TARGET_S = 3.0
RSS_ABOVE_BASELINE_MB = 200.0
REPORT_SHARE_TARGET = 1 / 20  # ours / ccusage's time for a report over 1M lines; 1/100 the goal
ROLES = ("up", "worker", "watch", "tansu", "up's child (schema, broker restarts, finish)")


def table(rows: list[tuple[str, ...]], indent: str = "  ") -> str:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)]
        out.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(out)


def _f(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def _ok(tree: dict[str, Any] | None) -> bool:
    return tree is not None and tree.get("returncode") == 0 and "error" not in tree


def render(fig: dict[str, Any]) -> str:
    base = fig.get("baseline", {}).get("peak_rss_mb")
    limit = None if base is None else base + RSS_ABOVE_BASELINE_MB
    cc_name = f"ccusage {fig.get('ccusage_version', '')}"
    parts = [f"ingestor from {fig.get('tree', '?')}"]
    if "ccusage_missing" in fig:
        parts.append(f"{cc_name}: not available ({fig['ccusage_missing']}); ours alone")
    else:
        parts.append(f"{cc_name}: {fig.get('ccusage', '?')}")
    parts.append(
        f"engine baseline (python + import chdb + one session), this run: {_f(base, '.0f')} MB; "
        f"RSS limit per process: baseline + {RSS_ABOVE_BASELINE_MB:.0f} = {_f(limit, '.0f')} MB"
    )

    fixed = [t for t in fig.get("fixed", []) if _ok(t)]
    best = min((t["wall_s"] for t in fixed), default=None)
    parts += [
        "",
        "fixed cost: `ingestor up --once` on an empty directory, cold data dir",
        "  "
        + ", ".join(f"{t['wall_s']:.2f} s" for t in fig.get("fixed", []))
        + f"  (target ≤ {FIXED_COST_TARGET_S:.0f} s: "
        + f"{verdict(None if best is None else best <= FIXED_COST_TARGET_S)})",
    ]

    rows: list[tuple[str, ...]] = [
        ("lines", "files", "GB", "ours s", "ccusage s", "ratio", "target")
    ]
    scaling: list[tuple[str, ...]] = [
        ("lines", "ours lines/s", "ccusage lines/s", *ROLES, "ccusage MB", "worst vs limit")
    ]
    for size in fig.get("sizes", []):
        lines, corpus = size["lines"], size.get("corpus", {})
        ours, cc = size.get("ours"), size.get("ccusage")
        ours_s = ours["wall_s"] if _ok(ours) else None
        cc_s = cc["wall_s"] if _ok(cc) else None
        ratio = ours_s / cc_s if ours_s and cc_s else None
        target = ""
        if lines >= 1_000_000 and ratio is not None:
            target = f"≤ {BACKFILL_RATIO_TARGET:.0f}x {verdict(ratio <= BACKFILL_RATIO_TARGET)}"
        if ours is not None and not _ok(ours):
            target = f"FAILED (exit {ours.get('returncode')})"
        rows.append(
            (
                f"{lines:,}",
                f"{corpus.get('files', 0):,}",
                f"{corpus.get('bytes', 0) / 1e9:.2f}",
                _f(ours_s, ".2f"),
                _f(cc_s, ".2f"),
                "—" if ratio is None else f"{ratio:.1f}x",
                target,
            )
        )
        peaks = ours.get("peak_rss_mb", {}) if ours else {}
        ours_peaks = [peaks.get(role) for role in ROLES]
        worst = max((p for p in ours_peaks if p is not None), default=None)
        within = None if worst is None or limit is None else worst <= limit
        scaling.append(
            (
                f"{lines:,}",
                _f(lines / ours_s if ours_s else None, ",.0f"),
                _f(lines / cc_s if cc_s else None, ",.0f"),
                *(_f(p, ".0f") for p in ours_peaks),
                _f((cc or {}).get("peak_rss_mb", {}).get("ccusage"), ".0f"),
                f"{_f(worst, '.0f')} {verdict(within)}",
            )
        )
    parts += [
        "",
        "backfill: `ingestor up --once DIR` (cold data dir, start to every line stored) vs "
        "`ccusage claude daily --json --offline` on the same files",
        table(rows),
        "",
        "scaling: lines/s, and peak RSS in MB of every process of `up` (VmHWM)",
        table(scaling),
        "",
        *_cpu(fig),
    ]
    for size in fig.get("sizes", []):
        if "reports" in size:
            parts += ["", *_reports(size["lines"], size["reports"])]
    for size in fig.get("sizes", []):
        ours = size.get("ours") or {}
        if "error" in ours:
            parts += ["", f"{size['lines']:,} lines: up did not finish:", ours["error"]]
    return "\n".join(parts)


def _cpu_by_role(run: dict[str, Any] | None) -> dict[str, float]:
    by_role: dict[str, float] = {}
    for proc in (run or {}).get("procs", []):
        by_role[proc["role"]] = by_role.get(proc["role"], 0.0) + proc.get("cpu_s", 0.0)
    return by_role


def _cpu(fig: dict[str, Any]) -> list[str]:
    """Where the CPU went: each process's seconds (the worker's chdb threads: all but those
    named as the process, Python's), all of them against the wall time (cores busy), and
    ccusage's; then what the backfill bar leaves on this machine's cores."""
    cores = fig.get("cores")
    rows: list[tuple[str, ...]] = [
        ("lines", "ours s", *ROLES[:2], "of it chdb", *ROLES[2:], "all", "cores busy")
        + ("ccusage CPU s", "cores busy")
    ]
    notes = []
    for size in fig.get("sizes", []):
        ours, cc = size.get("ours"), size.get("ccusage")
        if not _ok(ours):
            continue
        assert ours is not None
        wall, by_role = ours["wall_s"], _cpu_by_role(ours)
        workers = [p for p in ours.get("procs", []) if p["role"] == "worker"]
        engine = sum(p["cpu_s"] - p.get("own_threads_cpu_s", p["cpu_s"]) for p in workers)
        every = sum(by_role.values())
        theirs = sum(_cpu_by_role(cc).values()) if _ok(cc) else None
        cc_wall = cc["wall_s"] if _ok(cc) else None
        rows.append(
            (
                f"{size['lines']:,}",
                f"{wall:.1f}",
                *(_f(by_role.get(role)) for role in ROLES[:2]),
                _f(engine),
                *(_f(by_role.get(role)) for role in ROLES[2:]),
                f"{every:.1f}",
                f"{every / wall:.2f}",
                _f(theirs),
                _f(None if theirs is None or not cc_wall else theirs / cc_wall, ".2f"),
            )
        )
        if size["lines"] >= 1_000_000 and cc_wall and cores:
            bar = BACKFILL_RATIO_TARGET * cc_wall
            notes.append(
                f"  {size['lines']:,} lines: the {BACKFILL_RATIO_TARGET:.0f}x bar is {bar:.1f} s "
                f"of wall, at most {bar * cores:.0f} CPU-s on this machine's {cores} cores; "
                f"ours took {every:.0f} CPU-s"
            )
    if len(rows) == 1:
        return []
    return [
        "CPU seconds (user + sys) of every process of `up`, the worker's chdb threads apart "
        "(its insert, query and merge pools); cores busy = all CPU / wall",
        table(rows),
        *notes,
    ]


def _wall(run: dict[str, Any] | None) -> float | None:
    return run["wall_s"] if _ok(run) else None


def _share(ours: float | None, theirs: float | None) -> str:
    if ours is None or not theirs:
        return "—"
    share = ours / theirs
    if share >= 1:
        return f"{share:.1f}x"
    return f"1/{1 / share:.0f}" if share <= 0.1 else f"1/{1 / share:.1f}"


def _reports(lines: int, fig: dict[str, Any]) -> list[str]:
    """The reports table: seconds, and each of ours as a share of ccusage's time."""
    cc, cli, served = fig.get("ccusage", {}), fig.get("cli", {}), fig.get("served", {})
    rows: list[tuple[str, ...]] = [
        ("report", "ccusage s", "CLI first s", "share", "CLI builds s", "share")
        + ("CLI again s", "share", "served: CLI s", "share", "worker s", "share")
    ]
    for kind in ("daily", "monthly", "session"):
        theirs = _wall(cc.get(kind))
        own, via = _wall(cli.get(kind)), served.get(kind, {})
        again = _wall((cli.get(kind) or {}).get("kept"))
        first = _wall((cli.get(kind) or {}).get("first"))
        via_cli, worker = _wall(via.get("cli")), via.get("worker_s")
        rows.append(
            (
                kind,
                _f(theirs, ".2f"),
                _f(first, ".2f"),
                _share(first, theirs),
                _f(own, ".2f"),
                _share(own, theirs),
                _f(again, ".2f"),
                _share(again, theirs),
                _f(via_cli, ".2f"),
                _share(via_cli, theirs),
                _f(worker, ".3f"),
                _share(worker, theirs),
            )
        )
    out = [
        f"reports over {lines:,} lines: `ingestor report KIND --json` (CLI, no worker running: "
        "first: right after `up --once`, from the answers it kept as it ended; builds: no "
        "answer kept, the engine opened; again: the answer it kept on disk, no engine; "
        "served: while `ingestor up` runs, through its worker; worker: its own answer to "
        f"GET /report/KIND/) vs `ccusage claude KIND --json --offline` (target ≤ "
        f"1/{1 / REPORT_SHARE_TARGET:.0f} of ccusage's time)",
        table(rows),
    ]
    if any(not (cli.get(kind) or {}).get("first", {}).get("kept_by_up", True) for kind in cli):
        out.append("  CLI first: `up --once` kept no answers, so these first asks built them")
    if "error" in served:
        out.append(f"  served: {served['error']}")
    elif "first_daily_s" in served:
        out.append(f"  the worker's first answer (daily, just up): {served['first_daily_s']:.2f} s")
        built = [
            f"{kind} {served[kind]['worker_built_s']:.3f} s"
            for kind in ("daily", "monthly", "session")
            if (served.get(kind) or {}).get("worker_built_s") is not None
        ]
        if built:
            out.append(
                "  the worker building each answer (its first ask; kept until a store): "
                + ", ".join(built)
            )
    return out
