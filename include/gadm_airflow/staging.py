"""Per-run staging schemas: where a run builds its tables before publishing.

Each run stages into its own schema ``<schema>_stg_<hash of run id>``, so two
runs can never write into each other's tables; publishing is serialised by an
advisory lock on the live schema. A rerun of the same run starts from a fresh
staging schema. Every writing task refreshes its schema's heartbeat; staging
schemas of other runs idle for longer than the TTL belong to failed or killed
runs and are dropped by the next run (a successful publish consumes its own).
"""

from __future__ import annotations

import json
import logging
import time
from hashlib import blake2b

import psycopg
from psycopg import sql

from .db import transaction, validate_schema
from .errors import PermanentError

log = logging.getLogger(__name__)


def staging_name(schema: str, run_id: str) -> str:
    return f"{validate_schema(schema)}_stg_{blake2b(run_id.encode(), digest_size=4).hexdigest()}"


def _staging_schemas(cur: psycopg.Cursor, schema: str) -> list[tuple[str, dict]]:
    cur.execute(
        "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace "
        "WHERE nspname LIKE %s ESCAPE '!'", (schema.replace("_", "!_") + "!_stg!_%",))
    out = []
    for name, comment in cur.fetchall():
        try:
            meta = json.loads(comment or "{}")
        except ValueError:
            meta = {}
        out.append((name, meta))
    return out


def _comment(cur: psycopg.Cursor, name: str, run_id: str) -> None:
    cur.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
        sql.Identifier(name), sql.Literal(json.dumps({"run_id": run_id, "heartbeat": time.time()}))))


def touch(conn: psycopg.Connection, name: str, run_id: str) -> None:
    """Record that `run_id` is still working in staging schema `name` (fails if it is gone)."""
    try:
        with transaction(conn) as cur:
            _comment(cur, name, run_id)
    except psycopg.errors.InvalidSchemaName as exc:
        raise PermanentError(f"staging schema {name} of run {run_id} no longer exists (dropped after "
                             "being idle too long?); clear the whole run to start again") from exc


def prepare(conn: psycopg.Connection, schema: str, run_id: str, ttl: float) -> str:
    """Create this run's empty staging schema; drop its old copy and idle ones of other runs."""
    mine = staging_name(schema, run_id)
    now = time.time()
    with transaction(conn) as cur:
        for name, meta in _staging_schemas(cur, schema):
            if "run_id" not in meta:
                continue  # not made by us: never touch it
            age = now - float(meta.get("heartbeat", 0))
            if name == mine or age > ttl:
                log.info("dropping staging schema %s (run %s, idle %.0f s)", name, meta.get("run_id"), age)
                cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
            else:
                log.warning("staging schema %s of run %s was active %.0f s ago: another run may be "
                            "loading; left alone (publishes are serialised)", name, meta.get("run_id"), age)
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(mine)))
        _comment(cur, mine, run_id)
    return mine
