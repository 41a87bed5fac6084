"""Apply the numbered, append-only ``schema/NNNN_*.sql`` migrations, each at most once.

Applied versions are recorded in ``schema_migrations``; a migration whose version is recorded is
never run again, so ``apply_schema`` is idempotent. Statements use ``IF NOT EXISTS``, so a
migration interrupted half way is simply run again. A file whose header has
``-- requires: server`` (roles, grants) is skipped on chdb, with a log line, and not recorded.
``${database}`` in a file is replaced by the target database name; everything else runs with
that database current, so tables are named unqualified.

On a ClickHouse cluster (a server target with ``cluster``, from ``INGESTOR_CLICKHOUSE_CLUSTER``)
every statement is rendered by ``clickhouse/cluster.py``: ``ON CLUSTER``, ``Replicated*`` engines on
``<table>_local`` and a ``Distributed`` table under the table's name.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestor.clickhouse.cluster import merge_tree_tables, render_for_cluster
from ingestor.clickhouse.engine import ClickHouse, quote_identifier
from ingestor.errors import SchemaError, StorageError

__all__ = [
    "SCHEMA_DIR",
    "Migration",
    "apply_schema",
    "cluster_statements",
    "load_migrations",
    "split_statements",
]

log = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
_FILE = re.compile(r"(\d{4})_[A-Za-z0-9_]+\.sql")
_REQUIRES = re.compile(r"^--\s*requires:\s*(\w+)\s*$", re.MULTILINE)

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    requires_server: bool

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(schema_dir: Path = SCHEMA_DIR) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``schema_dir``, by version. Duplicate versions are an error."""
    migrations: dict[int, Migration] = {}
    for path in sorted(schema_dir.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if match is None:
            raise SchemaError(f"{path}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise SchemaError(f"{path}: version {version} is used twice")
        sql = path.read_text(encoding="utf-8")
        header = sql.split("\n\n", 1)[0]  # requirements live in the leading comment block
        requires = {m.group(1) for m in _REQUIRES.finditer(header)}
        migrations[version] = Migration(version, path.stem, sql, "server" in requires)
    return [migrations[v] for v in sorted(migrations)]


def apply_schema(ch: ClickHouse, schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Bring ``ch.target.database`` up to date; the names of the migrations applied now.

    Creates the database if missing. A second call applies nothing and returns ``[]``.
    Raises ``SchemaError`` naming the migration and statement that failed.
    """
    database = ch.target.database
    migrations = load_migrations(schema_dir)
    render = _renderer(ch, migrations)
    try:
        for statement in render(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}"):
            ch.execute(statement)
        for statement in render(_LEDGER):
            ch.execute(statement)
        rows = ch.query("SELECT version, checksum FROM schema_migrations FINAL")
        applied = {int(version): str(checksum) for version, checksum in rows}
    except StorageError as e:
        raise SchemaError(f"cannot read schema_migrations in {database}: {e}") from e

    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                log.warning(
                    "schema: %s changed after it was applied; add a new migration instead",
                    migration.name,
                )
            continue
        if migration.requires_server and ch.target.kind != "server":
            log.info("schema: skipping %s: it requires a ClickHouse server (chdb)", migration.name)
            continue
        sql = migration.sql.replace("${database}", quote_identifier(database))
        for statement in (r for s in split_statements(sql) for r in render(s)):
            try:
                ch.execute(statement)
            except StorageError as e:
                raise SchemaError(f"migration {migration.name} failed: {e}") from e
        ch.insert(
            "schema_migrations",
            [
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                }
            ],
        )
        log.info("schema: applied %s to %s", migration.name, database)
        done.append(migration.name)
    return done


def cluster_statements(cluster: str, database: str, schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Every statement ``apply_schema`` would run on ``cluster`` from scratch (pure; for review)."""
    migrations = load_migrations(schema_dir)
    render = _cluster_renderer(cluster, database, migrations)
    out = render(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}") + render(_LEDGER)
    for migration in migrations:
        sql = migration.sql.replace("${database}", quote_identifier(database))
        out += [r for s in split_statements(sql) for r in render(s)]
    return out


def _renderer(ch: ClickHouse, migrations: list[Migration]) -> Callable[[str], list[str]]:
    """How statements run on ``ch``: as written, or rendered for its cluster."""
    cluster = ch.target.cluster if ch.target.kind == "server" else None
    if not cluster:
        return lambda statement: [statement]
    return _cluster_renderer(cluster, ch.target.database, migrations)


def _cluster_renderer(
    cluster: str, database: str, migrations: list[Migration]
) -> Callable[[str], list[str]]:
    every = [_LEDGER, *(s for m in migrations for s in split_statements(m.sql))]
    local = merge_tree_tables(every)

    def render(statement: str) -> list[str]:
        if statement.lstrip().upper().startswith("CREATE DATABASE"):
            return [f"{statement} ON CLUSTER {quote_identifier(cluster)}"]
        return render_for_cluster(statement, cluster=cluster, database=database, local=local)

    return render


def split_statements(sql: str) -> list[str]:
    """The statements of a SQL file: ``;``-separated, comments dropped, quotes respected."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        ch = sql[i]
        if quote is not None:
            current.append(ch)
            if ch == "\\" and i + 1 < len(sql):
                current.append(sql[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end == -1 else end
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]
