"""``ingestor report daily|weekly|monthly|session|blocks|models``: ccusage's reports; and
``events|costs|errors|latency|alerts|trace RUN_ID|projects|ledger`` over the SDK's events and
the ledger.

Flags and JSON are ccusage 20.x's (``ccusage claude <kind> --help``); ``models`` and
``--machines`` are ours. The embedded ClickHouse (chdb) admits one process at a time; while
``ingestor up`` runs, its worker holds it, so the report is then asked of the worker over HTTP
(``/report/{kind}/``, the same ``ReportRequest`` as its query string, the same output).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import urllib.error
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ingestor.errors import ConfigError, StorageError
from ingestor.local.pidlock import held
from ingestor.plain_settings import ENGINE_DIR, ClickHouseTarget, PlainLocal
from ingestor.report.request import KINDS, ReportRequest
from ingestor.usage.prices import CostMode

if TYPE_CHECKING:
    from ingestor.clickhouse.engine import ClickHouse
    from ingestor.report.kept import KeptAnswers

__all__ = [
    "USUAL_KINDS",
    "keep_answers",
    "register",
    "request_of",
    "run",
    "system_zone",
    "usual_answers",
    "usual_requests",
]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="usage reports, as ccusage prints them",
        description="Usage reports from ClickHouse, with ccusage's numbers, flags and JSON. Reads "
        "INGESTOR_CLICKHOUSE_URL (default: the embedded chdb under the data dir, "
        "INGESTOR_DATA_DIR, ~/.local/share/ingestor on Linux); while `ingestor up` runs it asks "
        "its worker on INGESTOR_WEB_PORT. Days are cut in the system's time zone (-z UTC to "
        'override). Exit 0 with "No usage data found." when nothing matches; 2 on a bad flag or '
        "no data dir.",
    )
    p.add_argument(
        "kind", choices=KINDS,
        help="daily, weekly, monthly, session, blocks; ours: models, skipped; over events: "
        "events, costs, errors, latency, alerts, trace RUN_ID, projects; the ledger: ledger",
    )  # fmt: skip
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="trace: the agent run's id")
    p.add_argument("--limit", type=int, default=50, help="events, alerts: how many (default 50)")
    p.add_argument("-s", "--since", help="first day, YYYYMMDD (or YYYY-MM-DD), inclusive")
    p.add_argument("-u", "--until", help="last day, YYYYMMDD (or YYYY-MM-DD), inclusive")
    p.add_argument("-j", "--json", action="store_true", help="ccusage's JSON")
    p.add_argument(
        "-m", "--mode", choices=[m.value for m in CostMode], default="auto",
        help="auto: costUSD when a line has it, else calculated (default); calculate; display",
    )  # fmt: skip
    p.add_argument(
        "-o", "--order", choices=("asc", "desc"), default="asc", help="sort order (default asc)"
    )
    p.add_argument("-b", "--breakdown", action="store_true", help="per-model rows in the table")
    p.add_argument(
        "-z", "--timezone", default=None,
        help="IANA zone days are cut in (default: the system's, like ccusage)",
    )  # fmt: skip
    p.add_argument("-i", "--instances", action="store_true", help="daily: by project")
    p.add_argument("-p", "--project", help="only this project (the directory under projects/)")
    p.add_argument(
        "-w", "--start-of-week", default="sunday",
        help="weekly: the day weeks start on (default sunday)",
    )  # fmt: skip
    p.add_argument("--last", type=int, help="the last N days/weeks/months, this one included")
    p.add_argument("-a", "--active", action="store_true", help="blocks: the active one only")
    p.add_argument("-r", "--recent", action="store_true", help="blocks: the last 3 days")
    p.add_argument("-t", "--token-limit", help="blocks: token limit for warnings, or max")
    p.add_argument(
        "-n", "--session-length", type=float, default=5.0, help="blocks: hours (default 5)"
    )
    p.add_argument("--machines", action="store_true", help="one report per machine (dedup scope)")
    p.add_argument("--color", dest="color", action="store_true", default=None, help="force colour")
    p.add_argument(
        "--no-color", dest="color", action="store_false", help="no colour (NO_COLOR=1 too)"
    )
    p.add_argument("-O", "--offline", action="store_true", help="accepted for ccusage's sake")
    p.set_defaults(run=run)


def request_of(args: argparse.Namespace) -> ReportRequest:
    return ReportRequest(
        kind=args.kind,
        since=args.since,
        until=args.until,
        tz=system_zone() if args.timezone in (None, "local") else args.timezone,
        mode=CostMode(args.mode),
        order=args.order,
        instances=args.instances,
        project=args.project,
        start_of_week=str(args.start_of_week).lower(),  # type: ignore[arg-type]
        last=args.last,
        active=args.active,
        recent=args.recent,
        token_limit=args.token_limit,
        session_length=args.session_length,
        machines=args.machines,
        run_id=args.run_id,
        limit=args.limit,
    )


# The reports a person asks first, kept by ``up --once`` as it ends (``usual_answers``).
USUAL_KINDS = ("daily", "weekly", "monthly", "session", "models")


def usual_requests() -> dict[str, ReportRequest]:
    """``ingestor report KIND`` with no flag, for each of ``USUAL_KINDS``: the requests exactly
    as this command makes them (the system's zone, every default)."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return {kind: request_of(parser.parse_args(["report", kind])) for kind in USUAL_KINDS}


def usual_answers(ch: ClickHouse) -> dict[ReportRequest, bytes]:
    """The usual reports' answers (``usual_requests``), as ``_local_json`` builds each, from
    ``ch``: the embedded engine this process alone holds, about to be closed.

    ``up --once`` keeps them as it ends (``keep_answers``), so the first ``ingestor report`` after
    it prints a kept answer instead of opening the engine (its import and open alone are a third
    of a second). Merges are stopped first: nothing may change the stored data between these
    builds and the close, after which the state they are kept under is read."""
    from ingestor.report.build import build_json, build_many
    from ingestor.report.render import render_json

    ch.execute("SYSTEM STOP MERGES")
    requests = usual_requests()
    session = requests.pop("session")  # build_json writes it from the winners' sums
    # The others share one read of the counted entries; build_json renders each as this does.
    shared = build_many(ch, requests)
    answers = {requests[kind]: render_json(report).encode() for kind, report in shared.items()}
    answers[session] = build_json(ch, session)
    return answers


def keep_answers(data_dir: Path, answers: Mapping[ReportRequest, bytes]) -> None:
    """Keep ``answers``, built from the embedded engine under ``data_dir`` before it was closed,
    under the state of its files now (``report/kept.py``)."""
    from ingestor.report.kept import engine_state

    state = engine_state(data_dir / ENGINE_DIR)
    if state is not None:
        kept = _kept_answers(data_dir)
        for request, answer in answers.items():
            kept.put(request, state, answer)


def _kept_answers(data_dir: Path) -> KeptAnswers:
    from ingestor.report.kept import KeptAnswers, code_state

    return KeptAnswers(data_dir / "answers", code_state())


def system_zone() -> str:
    """The system's IANA zone (``TZ``, else ``/etc/localtime``'s target), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz or tz == "UTC":
        return tz
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return "UTC"
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else "UTC"


def run(args: argparse.Namespace) -> int:
    request = request_of(args)
    if args.json and request.kind in _JSON_AS_WRITTEN:
        _print_bytes(_answer_json(request))
        return 0
    if request.keepable:
        # Through its JSON, as the worker's answer comes: so that a kept answer serves it too.
        report = json.loads(_answer_json(request), parse_float=Decimal)
    else:
        report = _answer(request, _worker_report, _local, PlainLocal.read())
    if args.json:
        from ingestor.report.render import render_json

        print(render_json(report))
    else:
        from ingestor.report.render import render_table

        on_tty = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        color = args.color if args.color is not None else on_tty
        sys.stdout.write(render_table(report, breakdown=args.breakdown, color=color))
    return 0


def _print_bytes(text: bytes) -> None:
    """``print(text.decode())``, written as it is where stdout has bytes underneath (the JSON
    is ASCII): a session report is megabytes, decoded and encoded again for nothing."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        print(text.decode())
        return
    sys.stdout.flush()  # what was printed before goes first
    out.write(text)
    out.write(b"\n")
    out.flush()


# Reports whose JSON, read with Decimal numbers and written again, is the same text (no float in
# them): printed as the worker (or ``build_json``) wrote them, without reading them into objects.
_JSON_AS_WRITTEN = frozenset({"daily", "weekly", "monthly", "session", "models", "skipped"})
_T = TypeVar("_T")
# Where a worker's HTTP views answer: (host, port).
_Address = tuple[str, int]


def _answer_json(request: ReportRequest) -> bytes:
    """The report's JSON, as ``_answer`` gives it; a keepable one from the answer kept on disk
    when the stored data is what it was built from (``report/kept.py``), else kept there after
    the build. Only in the plain case (the embedded engine under ``PlainLocal``'s data dir) with
    no ``up`` holding it: then its worker answers, from the answers it keeps itself."""
    plain = PlainLocal.read()
    if plain is None or not request.keepable or held(plain.data_dir):
        return _answer(request, _worker_json, _local_json, plain)
    from ingestor.report.kept import engine_state

    before = engine_state(plain.data_dir / ENGINE_DIR)
    kept = _kept_answers(plain.data_dir)
    answer = kept.get(request, before) if before is not None else None
    if answer is not None:
        return answer
    answer = _answer(request, _worker_json, _local_json, plain)
    if before is not None:
        # Under the state before the build: if a store came during it, the files have changed
        # for good and the next ask builds again (the answer may be of either state).
        kept.put(request, before, answer)
    return answer


def _answer(
    request: ReportRequest,
    worker: Callable[[_Address, ReportRequest], _T],
    local: Callable[[_Engine, ReportRequest], _T],
    plain: PlainLocal | None,
) -> _T:
    """From the embedded engine (``local``), or from the running worker that holds it;
    ``plain``: ``PlainLocal.read()``'s."""
    if plain is not None:
        address = (plain.web_host, plain.web_port)
        if held(plain.data_dir):
            # `up` runs, so its worker holds the engine: ask it first, without loading the
            # engine only to be refused (a second of a report's time).
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                return worker(address, request)
        # The settings are not loaded (a fifth of an answer built here: plain_settings.py).
        engine = _Engine(plain.clickhouse, plain.data_dir)
    else:
        from ingestor.settings import load_settings

        settings = load_settings()
        engine = _Engine(settings.clickhouse, settings.data_dir)
        address = (settings.web_host, settings.web_port)
        if engine.target.kind == "chdb" and held(settings.data_dir):
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                return worker(address, request)
    try:
        return local(engine, request)
    except StorageError as exc:
        if engine.target.kind != "chdb":
            raise
        # Most likely the running worker holds the embedded engine: ask it instead.
        try:
            return worker(address, request)
        except OSError:
            raise exc from None  # no worker answers either: the engine's error is the one


def _worker_report(address: _Address, request: ReportRequest) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(_worker_json(address, request), parse_float=Decimal)
    return report


def _worker_json(address: _Address, request: ReportRequest) -> bytes:
    try:
        return _from_worker(address, request)
    except urllib.error.HTTPError as reply:
        raise ConfigError(_reason(reply)) from None


class _Engine(NamedTuple):
    """The engine a report is built from, and the data dir named when it holds no data yet."""

    target: ClickHouseTarget
    data_dir: Path


def _local(engine: _Engine, request: ReportRequest) -> dict[str, Any]:
    from ingestor.report.build import build

    return _locally(engine, lambda ch: build(ch, request))


def _local_json(engine: _Engine, request: ReportRequest) -> bytes:
    from ingestor.report.build import build_json

    return _locally(engine, lambda ch: build_json(ch, request))


def _locally(engine: _Engine, answer: Callable[[ClickHouse], _T]) -> _T:
    from ingestor.clickhouse.engine import open_clickhouse

    target = engine.target
    if target.kind == "chdb" and target.path is not None and not target.path.is_dir():
        raise ConfigError(
            f"no data yet in {engine.data_dir}: run `ingestor up` (or `make run`) to ingest "
            "~/.claude/projects, or set INGESTOR_DATA_DIR to where it ran"
        )
    with _quiet_stderr():  # chdb prints its lock error itself when the worker holds the engine
        ch = open_clickhouse(target)
    try:
        return answer(ch)
    finally:
        ch.close()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what the engine writes to file descriptor 2 (its C++ logger) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _from_worker(address: _Address, request: ReportRequest) -> bytes:
    # Imported here: with http.client and the email parser it is a fifth of a kept answer's ask.
    import urllib.request

    host, port = address
    url = f"http://{host}:{port}/report/{request.kind}/?"
    with urllib.request.urlopen(url + urllib.parse.urlencode(request.to_query()), timeout=60) as r:
        answer: bytes = r.read()
    return answer


def _reason(reply: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(reply.read())["error"])
    except (ValueError, KeyError, TypeError):
        return f"the worker answered {reply.code} {reply.reason}"
