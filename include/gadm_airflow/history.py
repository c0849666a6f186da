"""Load history kept in the target database, beside the data it describes.

Two small tables live in ``<schema>_meta`` (publish only ever replaces the
``adm_N`` tables of ``<schema>``, so history survives every load and every
Airflow metadata cleanup):

- ``load_runs``: one row per DAG run: run id, status (``published`` or
  ``unchanged``), engine, source and its identity, per-level figures and the
  whole benchmark summary.
- ``published_levels``: per level, the source identity and run that produced
  the live ``adm_N`` table: what the scheduled re-check compares against.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import schema
from .db import lock_key, table, transaction, validate_schema

META_SUFFIX = "_meta"

_DDL = (
    """CREATE TABLE IF NOT EXISTS {load_runs} (
        run_id text PRIMARY KEY,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        status text NOT NULL CHECK (status IN ('published', 'unchanged')),
        engine text,
        source text,
        source_identity jsonb NOT NULL,
        levels jsonb NOT NULL DEFAULT '[]',
        total_rows bigint,
        total_seconds double precision,
        summary jsonb)""",
    """CREATE TABLE IF NOT EXISTS {published_levels} (
        level integer PRIMARY KEY,
        table_name text NOT NULL,
        run_id text NOT NULL,
        published_at timestamptz NOT NULL DEFAULT now(),
        rows bigint,
        source_identity jsonb NOT NULL)""",
)


def meta_schema(target: str) -> str:
    return validate_schema(target) + META_SUFFIX


def _ensure(cur: psycopg.Cursor, meta: str) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(meta),))
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(meta)))
    for ddl in _DDL:
        cur.execute(sql.SQL(ddl).format(load_runs=table(meta, "load_runs"),
                                        published_levels=table(meta, "published_levels")))


def _has_history(cur: psycopg.Cursor, meta: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{meta}"."published_levels"',))
    return bool(cur.fetchone()[0])


def same_source(a: dict, b: dict) -> bool:
    """Whether two source identities describe the same bytes.

    The checksum decides when both sides have one; otherwise ETag, then
    Last-Modified + size (URLs), then size + mtime (files).
    """
    for keys in (("sha256",), ("etag",), ("last_modified", "size"), ("size", "mtime")):
        if all(a.get(k) is not None and b.get(k) is not None for k in keys):
            return all(a[k] == b[k] for k in keys)
    return False


def record_published(conn: psycopg.Connection, target: str, levels: list[dict], identity: dict,
                     run_id: str) -> None:
    """Remember which source identity each just-published level table came from.

    `levels`: ``[{"level": n, "rows": r}, ...]``.
    """
    meta = meta_schema(target)
    with transaction(conn) as cur:
        _ensure(cur, meta)
        for item in levels:
            cur.execute(sql.SQL(
                "INSERT INTO {} (level, table_name, run_id, rows, source_identity) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (level) DO UPDATE SET table_name = EXCLUDED.table_name, run_id = EXCLUDED.run_id, "
                "published_at = now(), rows = EXCLUDED.rows, source_identity = EXCLUDED.source_identity"
            ).format(table(meta, "published_levels")),
                (item["level"], schema.table_name(item["level"]), run_id, item.get("rows"), Jsonb(identity)))


def unchanged_since(conn: psycopg.Connection, target: str, levels: list[int], identity: dict) -> dt.datetime | None:
    """When the live tables of `levels` were published from this same source; None if any differs.

    A level counts as unchanged only if its live table still exists and was
    published from a source with the same identity.
    """
    meta = meta_schema(target)
    with transaction(conn) as cur:
        if not _has_history(cur, meta):
            return None
        cur.execute(sql.SQL(
            "SELECT level, published_at, source_identity, to_regclass(quote_ident(%s) || '.' || quote_ident(table_name)) "
            "IS NOT NULL FROM {} WHERE level = ANY(%s)").format(table(meta, "published_levels")),
            (target, list(levels)))
        rows = {r[0]: r for r in cur.fetchall()}
    if set(rows) != set(levels):
        return None
    if not all(exists and same_source(ident, identity) for _, _, ident, exists in rows.values()):
        return None
    return min(r[1] for r in rows.values())


def record_run(conn: psycopg.Connection, target: str, run_id: str, status: str, identity: dict,
               summary: dict | None = None, engine: str | None = None, source: str | None = None) -> None:
    """Insert (or, for a retried task, replace) the `load_runs` row of `run_id`."""
    summary = summary or {}
    total = summary.get("total", {})
    meta = meta_schema(target)
    with transaction(conn) as cur:
        _ensure(cur, meta)
        cur.execute(sql.SQL(
            "INSERT INTO {} (run_id, status, engine, source, source_identity, levels, total_rows, total_seconds, "
            "summary) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO UPDATE SET "
            "recorded_at = now(), status = EXCLUDED.status, engine = EXCLUDED.engine, source = EXCLUDED.source, "
            "source_identity = EXCLUDED.source_identity, levels = EXCLUDED.levels, "
            "total_rows = EXCLUDED.total_rows, total_seconds = EXCLUDED.total_seconds, summary = EXCLUDED.summary"
        ).format(table(meta, "load_runs")),
            (run_id, status, engine or summary.get("engine"), source or summary.get("source"), Jsonb(identity),
             Jsonb(summary.get("levels", [])), total.get("rows"), total.get("seconds"),
             Jsonb(summary) if summary else None))


def _read(conn: psycopg.Connection, target: str, query: str, table_name: str, params=()) -> list[dict]:
    """Rows of `query` on one history table as dicts; [] if `target` has no history yet."""
    meta = meta_schema(target)
    with transaction(conn) as cur:
        if not _has_history(cur, meta):
            return []
        cur.execute(sql.SQL(query).format(table(meta, table_name)), params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def recent_runs(conn: psycopg.Connection, target: str, limit: int = 20) -> list[dict]:
    """The newest `limit` runs, newest first."""
    return _read(conn, target, "SELECT run_id, recorded_at, status, engine, source, source_identity, levels, "
                 "total_rows, total_seconds FROM {} ORDER BY recorded_at DESC LIMIT %s", "load_runs", (limit,))


def published_levels(conn: psycopg.Connection, target: str) -> list[dict]:
    """The live level tables as last published: level, table, run, when, rows, source identity."""
    return _read(conn, target, "SELECT level, table_name, run_id, published_at, rows, source_identity "
                 "FROM {} ORDER BY level", "published_levels")


def schemas_with_history(conn: psycopg.Connection) -> list[str]:
    """Target schemas that have a load history (``<schema>_meta.load_runs``)."""
    with transaction(conn) as cur:
        cur.execute("SELECT left(table_schema, -%s) FROM information_schema.tables "
                    "WHERE table_name = 'load_runs' AND right(table_schema, %s) = %s ORDER BY 1",
                    (len(META_SUFFIX), len(META_SUFFIX), META_SUFFIX))
        return [r[0] for r in cur.fetchall()]
