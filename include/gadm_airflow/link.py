"""Link every staged level to its parent with a real FOREIGN KEY.

`parent_id` was computed during preprocessing from GID_{n-1} (see `keys`),
so linking is one set-based statement per level: null the orphans (children
whose parent GID is not in the parent table), report them, and add the
constraint. The parent is the staged table of this load, else the published
one; with neither, `parent_id` stays NULL and no constraint is added.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from . import schema
from .db import table, table_exists, transaction

log = logging.getLogger(__name__)
ORPHAN_SAMPLE = 10


def parent_table(cur: psycopg.Cursor, staging: str, live: str, level: int) -> tuple[str, str] | None:
    name = schema.table_name(level - 1)
    for where in (staging, live):
        if table_exists(cur, where, name):
            return where, name
    return None


def link_level(cur: psycopg.Cursor, child_schema: str, level: int, parent: tuple[str, str] | None) -> dict:
    """Null orphans' parent_id, add the FK; returns orphan counts and a sample."""
    child = table(child_schema, schema.table_name(level))
    gid = sql.Identifier(schema.output_column(schema.gid_column(level)))
    parent_gid = sql.Identifier(schema.output_column(schema.gid_column(level - 1)))
    if parent is None:
        cur.execute(sql.SQL("UPDATE {} SET parent_id = NULL WHERE parent_id IS NOT NULL").format(child))
        log.warning("%s: parent level %d is neither loaded nor published; parent_id left NULL, no FK",
                    schema.table_name(level), level - 1)
        return {"level": level, "parent": None, "orphans": cur.rowcount, "orphan_sample": [],
                "no_parent_gid": 0}
    cur.execute(sql.SQL(
        "WITH orphaned AS (UPDATE {child} c SET parent_id = NULL WHERE c.parent_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = c.parent_id) "
        "RETURNING c.{gid}, c.{pgid}) "
        "SELECT count(*), (array_agg({gid} || ' (parent ' || {pgid} || ')' ORDER BY {gid}))[1:{n}] FROM orphaned"
    ).format(child=child, parent=table(*parent), gid=gid, pgid=parent_gid, n=sql.Literal(ORPHAN_SAMPLE)))
    orphans, sample = cur.fetchone()
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(child, parent_gid))
    no_parent_gid = cur.fetchone()[0]
    constraint = sql.Identifier(f"{schema.table_name(level)}_parent_fk")
    cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(child, constraint))
    cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (parent_id) REFERENCES {} (id)")
                .format(child, constraint, table(*parent)))
    if orphans or no_parent_gid:
        log.warning("%s: %d orphans (parent GID not in %s.%s), e.g. %s; %d rows without a parent GID",
                    schema.table_name(level), orphans, *parent, ", ".join(sample or []), no_parent_gid)
    return {"level": level, "parent": ".".join(parent), "orphans": orphans,
            "orphan_sample": sample or [], "no_parent_gid": no_parent_gid}


def link_all(conn: psycopg.Connection, staging: str, live: str, levels: list[int]) -> list[dict]:
    """Link each staged level >= 1, lowest first, in one transaction."""
    results = []
    with transaction(conn) as cur:
        for level in sorted(levels):
            if level == 0:
                continue
            results.append(link_level(cur, staging, level, parent_table(cur, staging, live, level)))
    return results
