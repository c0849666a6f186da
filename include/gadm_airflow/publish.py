"""Swap staged tables into the live schema in one transaction.

Readers see the old complete set until commit and the new complete set after;
they wait at most for the swap itself (catalog updates only, no data copy).
Live child levels that this load did not replace are re-linked to the new
parent tables in the same transaction.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from . import schema
from .db import lock_key, table, table_exists, transaction
from .link import link_level

log = logging.getLogger(__name__)
LOCK_TIMEOUT = "60s"


def publish(conn: psycopg.Connection, staging: str, live: str, levels: list[int]) -> dict:
    with transaction(conn) as cur:
        cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (lock_key(live),))
        if not cur.fetchone()[0]:
            log.info("another run is publishing into schema %s: waiting for its lock", live)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(live),))
        log.info("holding the publish lock on schema %s (writers of %s are serialised)", live, live)
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(live)))
        for level in sorted(levels, reverse=True):
            name = schema.table_name(level)
            if not table_exists(cur, staging, name):
                raise RuntimeError(f"staged table {staging}.{name} is missing; rerun the load of level {level}")
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table(live, name)))
            cur.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(table(staging, name), sql.Identifier(live)))
        relinked = []
        for level in schema.LEVELS:
            if level - 1 in levels and level not in levels and table_exists(cur, live, schema.table_name(level)):
                relinked.append(link_level(cur, live, level, (live, schema.table_name(level - 1))))
        cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(staging)))
    log.info("published %s into schema %s", ", ".join(schema.table_name(n) for n in sorted(levels)), live)
    return {"schema": live, "tables": [schema.table_name(n) for n in sorted(levels)], "relinked": relinked}

