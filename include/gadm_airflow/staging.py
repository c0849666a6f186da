"""Per-run staging schemas: where a run builds its tables before publishing.

Each run stages into its own schema ``<schema>_stg_<hash of run id>``, so two
runs can never write into each other's tables; publishing is serialised by an
advisory lock on the live schema. A rerun of the same run starts from a fresh
staging schema; staging schemas of other runs are dropped once older than the
TTL (they belong to failed runs: a successful publish consumes its own).
"""

from __future__ import annotations

import json
import logging
import time
from hashlib import blake2b

import psycopg
from psycopg import sql

from .db import transaction, validate_schema

log = logging.getLogger(__name__)
STAGING_TTL_SECONDS = 12 * 3600


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


def prepare(conn: psycopg.Connection, schema: str, run_id: str, ttl: float = STAGING_TTL_SECONDS) -> str:
    """Create this run's empty staging schema; drop its old copy and expired ones."""
    mine = staging_name(schema, run_id)
    now = time.time()
    with transaction(conn) as cur:
        for name, meta in _staging_schemas(cur, schema):
            if "run_id" not in meta:
                continue  # not made by us: never touch it
            age = now - float(meta.get("created", 0))
            if name == mine or age > ttl:
                log.info("dropping staging schema %s (run %s, %.0f s old)", name, meta.get("run_id"), age)
                cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
            else:
                log.warning("staging schema %s of run %s is %.0f s old: another run may be active; "
                            "left alone (publishes are serialised)", name, meta.get("run_id"), age)
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(mine)))
        cur.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
            sql.Identifier(mine), sql.Literal(json.dumps({"run_id": run_id, "created": now}))))
    return mine
