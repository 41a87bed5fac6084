"""``python -m bench.tansu_rss --lines N [--max-rss-mb MB]``: the embedded broker's memory over
one ``ingestor up --once`` run on a generated corpus (issue #7, row 14).

Samples the RSS of ``up``'s Tansu child (whichever process it is after a restart) every half
second; prints the peak, the RSS at the end, the broker restarts ``up`` reported, and whether
ClickHouse holds exactly the corpus oracle's lines. ``--max-rss-mb 0`` is the behaviour before
the bound (``INGESTOR_TANSU_MAX_RSS_MB``). Figures only: it fails only when the run fails.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]


def _tansu_rss_mb(up: int) -> tuple[int, float] | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            exe = (entry / "cmdline").read_bytes().split(b"\0")[0]
            if int(stat.rsplit(")", 1)[1].split()[1]) != up or not exe.endswith(b"tansu"):
                continue
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        return int(entry.name), pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-rss-mb", type=float, default=None, help="default: the setting's")
    args = parser.parse_args(argv)

    from ingestor.corpus.generate import generate
    from ingestor.corpus.reference import Reference

    with tempfile.TemporaryDirectory(prefix="tansu-rss-") as tmp:
        root = Path(tmp)
        generate(root / "claude", lines=args.lines, seed=args.seed)
        valid = Reference.load(root / "claude").accounting.valid
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
        env["INGESTOR_DATA_DIR"] = str(root / "data")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            env["INGESTOR_WEB_PORT"] = str(probe.getsockname()[1])
        if args.max_rss_mb is not None:
            env["INGESTOR_TANSU_MAX_RSS_MB"] = str(args.max_rss_mb)
        with (root / "up.log").open("wb") as log:
            up = subprocess.Popen(
                [sys.executable, "-m", "ingestor.cli.main", "up", "--once"]
                + [str(root / "claude" / "projects")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            began, samples, peaks = time.monotonic(), [], {}
            try:
                while up.poll() is None:
                    sample = _tansu_rss_mb(up.pid)
                    if sample is not None:
                        pid, mb = sample
                        samples.append(mb)
                        peaks[pid] = max(mb, peaks.get(pid, 0.0))
                    time.sleep(0.5)
            except KeyboardInterrupt:
                os.killpg(up.pid, signal.SIGKILL)
                raise
        elapsed = time.monotonic() - began
        text = (root / "up.log").read_text(errors="replace")
        restarts = re.findall(r"the broker holds (\d+) MB", text)
        stored = re.findall(r"in all: ([\d,]+) transcript lines stored", text)
        stored_n = int(stored[-1].replace(",", "")) if stored else -1
        bound = "default" if args.max_rss_mb is None else f"{args.max_rss_mb:g}"
        print(f"lines {args.lines:,}  bound {bound} MB  exit {up.returncode}  {elapsed:.0f} s")
        if samples:
            peak, last = max(samples), samples[-1]
            print(f"tansu RSS: peak {peak:.0f} MB, last {last:.0f} MB ({len(samples)} samples)")
            each = ", ".join(f"{mb:.0f}" for mb in peaks.values())
            print(f"peak of each broker process in turn: {each} MB")
        print(f"planned broker restarts: {len(restarts)} (at {', '.join(restarts) or '-'} MB)")
        verdict = "exact" if stored_n == valid else "NOT EXACT"
        print(f"transcript lines stored {stored_n:,} of {valid:,}: {verdict}")
        return 0 if up.returncode == 0 and stored_n == valid else 1


if __name__ == "__main__":
    raise SystemExit(main())
