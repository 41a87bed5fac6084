"""``bench.e2e``'s figures and its table: what the run measured, per line and per process, set
against the targets and the ceilings. Pure; the aligned table is ``bench.render``'s."""

from __future__ import annotations

from typing import Any

from bench.e2e_run import Run
from bench.measure import Usage
from bench.render import RSS_ABOVE_BASELINE_MB as TARGET_RSS_ABOVE_BASELINE_MB
from bench.render import table, verdict

__all__ = ["figures", "render"]

TARGET_LINES_PER_S = 50_000
CCUSAGE_LINES_PER_S = 110_000  # ccusage on the same files, from the issue


def per_1k(cpu_s: float | None, lines: int) -> float | None:
    return None if cpu_s is None or not lines else cpu_s / (lines / 1000)


def fmt(value: float | int | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def phase(
    u0: Usage | None, u1: Usage | None, t0: float | None, t1: float | None, lines: int
) -> dict[str, float] | None:
    """Lines/s and cores busy (all threads, main thread) between two samples of one process."""
    if u0 is None or u1 is None or t0 is None or t1 is None or t1 - t0 <= 0.5:
        return None
    span = t1 - t0
    out = {"seconds": span, "lines_per_s": lines / span, "cores_busy": (u1.cpu_s - u0.cpu_s) / span}
    if u0.main_thread_cpu_s is not None and u1.main_thread_cpu_s is not None:
        out["main_thread_busy"] = (u1.main_thread_cpu_s - u0.main_thread_cpu_s) / span
    return out


def figures(
    lines: int, seed: int, corpus_stats: dict[str, Any], baseline: dict[str, Any], run: Run
) -> dict[str, Any]:
    wall = run.wall_s or None
    lps = lines / wall if wall else None
    base_mb = baseline.get("peak_rss_mb")
    worker_rss = run.worker.peak_rss_mb if run.worker else None
    watcher_rss = run.watcher.peak_rss_mb if run.watcher else None
    above = worker_rss - base_mb if worker_rss is not None and base_mb is not None else None
    processing = wall - run.worker_first_line_s if wall and run.worker_first_line_s else None
    first, exited = run.worker_first_line_s, run.watcher_exit_s
    phases = {
        # The worker while the watcher still sends, then alone on the backlog.
        "with_watcher": phase(
            run.worker_at_first_line,
            run.worker_at_watcher_exit,
            first,
            exited,
            run.processed_at_watcher_exit,
        ),
        "alone": phase(
            run.worker_at_watcher_exit or run.worker_at_first_line,
            run.worker,
            max(first or 0.0, exited or 0.0) or None,
            wall,
            lines - run.processed_at_watcher_exit,
        ),
        "whole": phase(run.worker_at_first_line, run.worker, first, wall, lines),
    }
    return {
        "lines": lines,
        "seed": seed,
        "corpus": corpus_stats,
        "wall_s": wall,
        "lines_per_s": lps,
        "records_per_s": run.rows_stored / wall if wall else None,
        "rows_stored": run.rows_stored,
        "lines_read": run.lines_read,
        "lines_processed": run.processed,
        "envelopes": run.envelopes,
        "flushes": run.flushes,
        "worker_counts": run.counts,
        "worker_first_line_s": run.worker_first_line_s,
        "watcher_exit_s": run.watcher_exit_s,
        "watcher_lines_per_s": lines / run.watcher_exit_s if run.watcher_exit_s else None,
        "lines_per_s_after_first_line": lines / processing if processing else None,
        "watcher": {
            "cpu_s": run.watcher.cpu_s if run.watcher else None,
            "cpu_s_per_1k_lines": per_1k(run.watcher.cpu_s if run.watcher else None, lines),
            "life": phase(Usage(0.0, 0.0, 0.0), run.watcher, 0.0, run.watcher_exit_s, lines),
            "peak_rss_mb": watcher_rss,
        },
        "worker": {
            "cpu_s": run.worker.cpu_s if run.worker else None,
            "cpu_s_per_1k_lines": per_1k(run.worker.cpu_s if run.worker else None, lines),
            "phases": phases,
            "peak_rss_mb": worker_rss,
            "rss_above_engine_baseline_mb": above,
        },
        "broker": {
            "cpu_s": run.broker_cpu_s,
            "cpu_s_per_1k_lines": per_1k(run.broker_cpu_s, lines),
        },
        "engine_baseline": baseline,
        "targets": {
            "lines_per_s": TARGET_LINES_PER_S,
            "rss_above_engine_baseline_mb": TARGET_RSS_ABOVE_BASELINE_MB,
            "lines_per_s_ok": None if lps is None else lps >= TARGET_LINES_PER_S,
            "worker_rss_ok": None if above is None else above <= TARGET_RSS_ABOVE_BASELINE_MB,
            "watcher_rss_ok": (
                None if watcher_rss is None else watcher_rss <= TARGET_RSS_ABOVE_BASELINE_MB
            ),
        },
        "ccusage_lines_per_s": CCUSAGE_LINES_PER_S,
        "error": run.error,
        "note": run.note,
        "screenshot": run.screenshot,
    }


def ceiling_row(name: str, body: dict[str, Any] | None, lines: int) -> tuple[str, ...]:
    if not body or "error" in body:
        why = (body or {}).get("error", "not run")
        return (name, "—", "—", "—", "—", f"({why})")
    secs, cpu = float(body["seconds"]), float(body["cpu_seconds"])
    return (
        name,
        fmt(lines / secs if secs else None),
        fmt(secs, ".1f"),
        fmt(per_1k(cpu, lines), ".3f"),
        fmt(body.get("peak_rss_mb"), ".0f"),
        "",
    )


def busy(ph: dict[str, float] | None) -> str:
    if not ph:
        return "—"
    return f"{fmt(ph['cores_busy'], '.2f')} / {fmt(ph.get('main_thread_busy'), '.2f')}"


def phase_row(name: str, ph: dict[str, float] | None) -> tuple[str, ...]:
    if not ph:
        return (name, "—", "—", "—")
    return (name, fmt(ph["seconds"], ".1f"), fmt(ph["lines_per_s"]), busy(ph))


def render(fig: dict[str, Any]) -> str:
    c, t = fig["corpus"], fig["targets"]
    w, k, b = fig["watcher"], fig["worker"], fig["broker"]
    base = fig["engine_baseline"]
    lines = fig["lines"]
    whole = k["phases"]["whole"]
    parts = [
        f"ingestor bench: {lines:,} lines, seed {fig['seed']}, {c.get('files', 0):,} files, "
        f"{c.get('bytes', 0) / 1e9:.2f} GB, {c.get('bad_lines', 0):,} malformed",
        "",
        "end to end (Tansu + `ingestor worker` + `ingestor watch --once`, chdb)",
        table(
            [
                ("wall (spawn → every line stored)", fmt(fig["wall_s"], ".1f"), "s", ""),
                (
                    "lines/s end to end",
                    fmt(fig["lines_per_s"]),
                    "",
                    f"target ≥ {TARGET_LINES_PER_S:,}  {verdict(t['lines_per_s_ok'])}",
                ),
                ("records/s (rows stored / wall)", fmt(fig["records_per_s"]), "", ""),
                ("rows stored (all tables)", fmt(fig["rows_stored"]), "", ""),
                ("lines read / processed", f"{fig['lines_read']:,} / {fig['lines_processed']:,}"),
                ("envelopes / flushes", f"{fig['envelopes']:,} / {fig['flushes']:,}"),
                ("worker first line after", fmt(fig["worker_first_line_s"], ".1f"), "s", ""),
                ("watcher done after", fmt(fig["watcher_exit_s"], ".1f"), "s", ""),
                ("watcher alone lines/s", fmt(fig["watcher_lines_per_s"]), "", ""),
                (
                    "lines/s from worker's first line",
                    fmt(fig["lines_per_s_after_first_line"]),
                    "",
                    "(excludes worker start-up)",
                ),
            ]
        ),
        "",
        table(
            [
                (
                    "per process",
                    "CPU s/1k lines",
                    "cores busy (all/main thr)",
                    "peak RSS MB",
                    "above engine",
                ),
                (
                    "watcher",
                    fmt(w["cpu_s_per_1k_lines"], ".3f"),
                    busy(w["life"]),
                    fmt(w["peak_rss_mb"], ".0f"),
                    "(no engine)",
                ),
                (
                    "worker",
                    fmt(k["cpu_s_per_1k_lines"], ".3f"),
                    busy(whole),
                    fmt(k["peak_rss_mb"], ".0f"),
                    fmt(k["rss_above_engine_baseline_mb"], ".0f"),
                ),
                ("broker (Tansu)", fmt(b["cpu_s_per_1k_lines"], ".3f"), "", "", ""),
                (
                    "engine baseline (python+chdb)",
                    "",
                    "",
                    fmt(base.get("peak_rss_mb"), ".0f"),
                    "",
                ),
            ]
        ),
        f"  RSS target: ≤ {TARGET_RSS_ABOVE_BASELINE_MB:.0f} MB per process above the engine "
        f"baseline — worker {verdict(t['worker_rss_ok'])}, "
        f"watcher (whole RSS) {verdict(t['watcher_rss_ok'])}",
        "  (cores busy = CPU s / wall s; watcher over its life, worker from its first line on)",
        "",
        "worker phases",
        table(
            [
                ("", "seconds", "lines/s", "cores busy (all/main thr)"),
                phase_row("while the watcher sends", k["phases"]["with_watcher"]),
                phase_row("alone on the backlog", k["phases"]["alone"]),
            ]
        ),
    ]
    chk = fig.get("check")
    if chk:
        parts += [
            "",
            "correctness (report `daily` from chdb vs Reference.load(corpus).daily())",
            f"  exact: {'yes' if chk['exact'] else 'no'}  "
            f"({chk['days']} days stored, {chk['reference_days']} in reference)",
        ]
        if chk["first_mismatch"]:
            parts.append(f"  first mismatch: {chk['first_mismatch']}")
        parts += [
            f"  total tokens stored {chk['stored_total_tokens']:,}  "
            f"reference {chk['reference_total_tokens']:,}",
            f"  total cost   stored {chk['stored_cost']}  reference {chk['reference_cost']}",
            f"  transcript rows {chk['transcript_rows']:,}, dead letters "
            f"{chk['dead_letter_rows']:,}; reference counted {chk['reference_counted']:,} "
            f"entries in {chk['reference_s']:.1f}s",
        ]
    ceil = fig.get("ceilings", {})
    parts += [
        "",
        "ceilings (same files, same run, each in a fresh process)",
        table(
            [
                ("", "lines/s", "wall s", "CPU s/1k lines", "peak RSS MB", ""),
                ("end to end (above)", fmt(fig["lines_per_s"]), fmt(fig["wall_s"], ".1f"), "", ""),
                ceiling_row("raw_consume (aiokafka, topic)", ceil.get("raw_consume"), lines),
                ceiling_row("chdb_direct (files → chdb)", ceil.get("chdb_direct"), lines),
                ("ccusage (from the issue)", f"≈ {CCUSAGE_LINES_PER_S:,}", "", "", "", ""),
            ]
        ),
    ]
    if fig.get("note"):
        parts += ["", f"note: {fig['note']}"]
    if fig.get("screenshot"):
        parts += ["", f"dashboard screenshot: {fig['screenshot']}"]
    if fig.get("error"):
        parts += ["", f"PIPELINE ERROR: {fig['error']}"]
    return "\n".join(parts)
