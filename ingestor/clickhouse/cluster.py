"""Migrations rendered for a ClickHouse cluster (``INGESTOR_CLICKHOUSE_CLUSTER``): pure text.

The ``schema/`` files are written for one server. On a cluster every statement runs
``ON CLUSTER <name>``, and each MergeTree table ``t`` becomes two:

* ``t_local`` on every node, with the ``Replicated*`` variant of its engine (replicas of one
  shard hold the same rows; the ``non_replicated_deduplication_window`` becomes
  ``replicated_deduplication_window``, so a retried insert block is still a no-op);
* ``t``, a ``Distributed`` table over ``t_local`` under the old name, so the worker, the views
  and the reports read and write ``t`` as on one server and reads fan out to every shard.

The sharding key is a hash of the table's sorting key: every copy of a row (a retried or
replayed line, the same ``(source_file, generation, offset)``) lands on the same shard, where
``ReplacingMergeTree``/``FINAL`` collapses it, as on one server. Materialized views are created
on the local tables (``FROM events_local`` ``TO hourly_metrics_local``): they fire where the
rows are stored. Inserts through a ``Distributed`` table must be synchronous for "ClickHouse
confirmed the batch" to mean stored (``insert_distributed_sync``, set by the server engine).
A table of another engine (``copy_groups``, EmbeddedRocksDB) is created on every node as it is:
the worker does not use it on a cluster (``clickhouse/winners.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ingestor.clickhouse.engine import quote_identifier, quote_string

__all__ = ["LOCAL_SUFFIX", "merge_tree_tables", "render_for_cluster"]

LOCAL_SUFFIX = "_local"

_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\b", re.IGNORECASE)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w*MergeTree)\b(\s*\()?", re.IGNORECASE)
_CREATE_MV = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+)\b", re.IGNORECASE)
_CREATE_VIEW = re.compile(r"^CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?(\w+)\b", re.IGNORECASE)
_ALTER = re.compile(r"^ALTER TABLE (\w+)\b", re.IGNORECASE)
_TRUNCATE = re.compile(r"^TRUNCATE TABLE (IF EXISTS )?(\w+)\s*$", re.IGNORECASE)
_LOCAL_ONLY = re.compile(r"^\s*(ADD|DROP|MATERIALIZE)\s+INDEX\b", re.IGNORECASE)
_DROP_VIEW = re.compile(r"^DROP VIEW (?:IF EXISTS )?(\w+)\b", re.IGNORECASE)
_ROLE = re.compile(r"^CREATE ROLE IF NOT EXISTS (\w+)\b", re.IGNORECASE)
_GRANT = re.compile(r"^GRANT\b", re.IGNORECASE)
_SOURCE = re.compile(r"\b(FROM|JOIN)\s+(\w+)\b", re.IGNORECASE)


def merge_tree_tables(statements: Iterable[str]) -> set[str]:
    """The tables the statements create with a MergeTree-family engine (they get ``_local``)."""
    names = set()
    for statement in statements:
        create = _CREATE_TABLE.match(statement.strip())
        if create is not None and _ENGINE.search(statement):
            names.add(create.group(1))
    return names


def render_for_cluster(
    statement: str, *, cluster: str, database: str, local: set[str]
) -> list[str]:
    """``statement`` for ``cluster`` (see the module docstring); ``local``: ``merge_tree_tables``.

    Statements of kinds not named there (``INSERT … SELECT``) run once, unchanged: they go
    through the ``Distributed`` tables.
    """
    sql = statement.strip()
    on = f" ON CLUSTER {quote_identifier(cluster)}"
    if (create := _CREATE_TABLE.match(sql)) is not None and (engine := _ENGINE.search(sql)):
        return _table(sql, create.group(1), engine, on, cluster, database)
    if create is not None:  # another engine (copy_groups): a table of its own on every node
        return [sql[: create.end()] + on + sql[create.end() :]]
    if (mv := _CREATE_MV.match(sql)) is not None:
        name, target = mv.groups()
        head = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name}{on} TO {_localized(target, local)}"
        body = sql[mv.end() :]
        # The view fires on inserts into the table it reads: the local one, where rows land.
        body = _SOURCE.sub(lambda m: f"{m.group(1)} {_localized(m.group(2), local)}", body)
        return [head + body]
    if (view := _CREATE_VIEW.match(sql)) is not None:
        return [sql[: view.end()] + on + sql[view.end() :]]
    if (alter := _ALTER.match(sql)) is not None:
        name, rest = alter.group(1), sql[alter.end() :]
        if name in local and _LOCAL_ONLY.match(rest):  # a Distributed table has no indexes
            return [f"ALTER TABLE {name}{LOCAL_SUFFIX}{on}{rest}"]
        if name in local:  # the shards' tables and the Distributed one alike
            return [f"ALTER TABLE {name}{LOCAL_SUFFIX}{on}{rest}", f"ALTER TABLE {name}{on}{rest}"]
        return [f"ALTER TABLE {name}{on}{rest}"]
    if (truncate := _TRUNCATE.match(sql)) is not None:  # the rows live in the shards' tables
        exists, name = truncate.groups()
        return [f"TRUNCATE TABLE {exists or ''}{_localized(name, local)}{on}"]
    if (drop := _DROP_VIEW.match(sql)) is not None:
        return [sql[: drop.end()] + on + sql[drop.end() :]]
    if (role := _ROLE.match(sql)) is not None:
        return [sql[: role.end()] + on + sql[role.end() :]]
    if _GRANT.match(sql) is not None:
        return ["GRANT" + on + sql[len("GRANT") :]]
    return [sql]


def _table(
    sql: str, name: str, engine: re.Match[str], on: str, cluster: str, database: str
) -> list[str]:
    local = name + LOCAL_SUFFIX
    path = f"'/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}'"
    args = f"({path}, " if engine.group(2) else f"({path})"
    replicated = f"ENGINE = Replicated{engine.group(1)}{args}"
    body = sql[: engine.start()] + replicated + sql[engine.end() :]
    body = body.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
    create = _CREATE_TABLE.match(body)
    assert create is not None
    local_sql = f"CREATE TABLE IF NOT EXISTS {local}{on}" + body[create.end() :]
    key = _sorting_key(sql)
    shard = f"cityHash64({key})" if key else "rand()"
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {name}{on} AS {local}\n"
        f"ENGINE = Distributed({', '.join(map(quote_string, (cluster, database, local)))}, {shard})"
    )
    return [local_sql, distributed]


def _sorting_key(sql: str) -> str | None:
    """The ``ORDER BY`` expression of a CREATE TABLE (a tuple's parentheses kept balanced)."""
    match = re.search(r"\bORDER BY\s+", sql, re.IGNORECASE)
    if match is None:
        return None
    i, depth, start = match.end(), 0, match.end()
    while i < len(sql):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return sql[start : i + 1]
        elif depth == 0 and (ch.isspace() or ch == ";"):
            break
        i += 1
    key = sql[start:i].strip()
    return key or None


def _localized(name: str, local: set[str]) -> str:
    return name + LOCAL_SUFFIX if name in local else name
