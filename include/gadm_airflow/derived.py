"""A derived table rebuilt after each publish: `<schema>.country_summary`.

One row per country of ``adm_0`` with its number of units at each published
level (``adm_1`` .. ``adm_5``). The example DAG `gadm_refresh_example`, scheduled
on the published tables' Assets, rebuilds it; it holds the publish lock of the
schema so it never reads a half-swapped set.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from . import schema
from .db import lock_key, table, table_exists, transaction, validate_schema

SUMMARY_TABLE = "country_summary"


def refresh_country_summary(conn: psycopg.Connection, target: str) -> int:
    """Rebuild `target.country_summary` from the live level tables; return its row count."""
    target = validate_schema(target)
    gid0 = sql.Identifier(schema.output_column(schema.gid_column(0)))
    with transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(target),))
        if not table_exists(cur, target, schema.table_name(0)):
            raise LookupError(f"schema {target} has no published {schema.table_name(0)}: nothing to summarise")
        levels = [n for n in schema.LEVELS[1:] if table_exists(cur, target, schema.table_name(n))]
        counts = [sql.SQL("(SELECT count(*) FROM {t} c WHERE c.{g} = a.{g}) AS {col}").format(
            t=table(target, schema.table_name(n)), g=gid0, col=sql.Identifier(f"{schema.table_name(n)}_units"))
            for n in levels]
        new = f"{SUMMARY_TABLE}_new"
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table(target, new)))
        cur.execute(sql.SQL("CREATE TABLE {new} AS SELECT a.{g}, a.{country}{sep}{counts} FROM {adm0} a "
                            "ORDER BY a.{g}").format(
            new=table(target, new), g=gid0, country=sql.Identifier(schema.output_column("COUNTRY")),
            sep=sql.SQL(", " if counts else ""), counts=sql.SQL(", ").join(counts),
            adm0=table(target, schema.table_name(0))))
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table(target, SUMMARY_TABLE)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(table(target, new), sql.Identifier(SUMMARY_TABLE)))
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table(target, SUMMARY_TABLE)))
        return cur.fetchone()[0]
