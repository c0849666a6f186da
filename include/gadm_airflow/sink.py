"""Load one level's intermediate into its staging table with binary COPY.

The table is created, filled, indexed and analysed in one transaction: a
killed or failed load leaves no half-filled table, and a retry starts clean.
Geometry values are stored without TOAST compression (STORAGE EXTERNAL):
pglz compression of large geometries costs more than the rest of the load.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg import sql

from . import pgcopy, schema
from .db import table, transaction
from .intermediate import iter_batches, row_count
from .metrics import PhaseTimer, Progress

log = logging.getLogger(__name__)


def create_table_sql(schema_name: str, level: int, columns: list[str]) -> sql.Composed:
    defs = [sql.SQL("id bigint NOT NULL")]
    if level >= 1:
        defs.append(sql.SQL("parent_id bigint"))
    defs += [sql.SQL("{} text").format(sql.Identifier(schema.output_column(c))) for c in columns]
    defs.append(sql.SQL("{} geometry(MultiPolygon, {})").format(
        sql.Identifier(schema.GEOMETRY_COLUMN), sql.Literal(schema.SRID)))
    return sql.SQL("CREATE TABLE {} ({})").format(
        table(schema_name, schema.table_name(level)), sql.SQL(", ").join(defs))


def _copy_rows(cur: psycopg.Cursor, target: sql.Composed, names: list[str], parquet: Path,
               batch_rows: int, progress: Progress) -> int:
    """Stream the intermediate into `target`, one vectorised binary COPY chunk per batch."""
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, names)))
    rows = 0
    with cur.copy(copy_sql) as copy:
        copy.write(pgcopy.HEADER)
        for batch in iter_batches(parquet, batch_rows):
            copy.write(pgcopy.encode(batch, names, {"id", "parent_id"}, schema.GEOMETRY_COLUMN))
            rows += batch.num_rows
            progress.advance(batch.num_rows)
        copy.write(pgcopy.TRAILER)
    return rows


def load_level(conn: psycopg.Connection, staging: str, level: int, columns: list[str],
               parquet: Path, batch_rows: int, timer: PhaseTimer) -> dict:
    """Replace ``staging.adm_<level>`` with the intermediate's rows; index and analyse it."""
    name = schema.table_name(level)
    target = table(staging, name)
    names = ["id"] + (["parent_id"] if level >= 1 else []) + \
        [schema.output_column(c) for c in columns] + [schema.GEOMETRY_COLUMN]
    gid = schema.output_column(schema.gid_column(level))
    progress = Progress(log, f"load {schema.levels_layer(level)}", row_count(parquet))
    with transaction(conn) as cur:
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cur.execute("SET LOCAL synchronous_commit = off")  # staging only; publish commits durably
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(target))
        with timer.phase("copy"):
            cur.execute(create_table_sql(staging, level, columns))
            cur.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STORAGE EXTERNAL").format(
                target, sql.Identifier(schema.GEOMETRY_COLUMN)))
            rows = _copy_rows(cur, target, names, parquet, batch_rows, progress)
        with timer.phase("index"):
            cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (id)").format(
                target, sql.Identifier(f"{name}_pkey")))
            cur.execute(sql.SQL("CREATE INDEX {} ON {} USING gist ({})").format(
                sql.Identifier(f"{name}_geom_gist"), target, sql.Identifier(schema.GEOMETRY_COLUMN)))
            cur.execute(sql.SQL("SELECT {gid}, count(*) FROM {t} WHERE {gid} IS NOT NULL "
                                "GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 10").format(
                gid=sql.Identifier(gid), t=target))
            duplicates = [r[0] for r in cur.fetchall()]
            unique = not duplicates
            cur.execute(sql.SQL("CREATE {} INDEX {} ON {} ({})").format(
                sql.SQL("UNIQUE" if unique else ""), sql.Identifier(f"{name}_{gid}_idx"), target,
                sql.Identifier(gid)))
            if not unique:
                log.warning("%s: duplicate %s values (e.g. %s): kept every row, index on %s is not unique",
                            name, gid, ", ".join(duplicates), gid)
            if level >= 1:
                cur.execute(sql.SQL("CREATE INDEX {} ON {} (parent_id)").format(
                    sql.Identifier(f"{name}_parent_id_idx"), target))
        with timer.phase("analyze"):
            cur.execute(sql.SQL("ANALYZE {}").format(target))
        cur.execute("SELECT pg_total_relation_size(%s)", (f'"{staging}"."{name}"',))
        table_bytes = cur.fetchone()[0]
    return {"rows_loaded": rows, "table_bytes": table_bytes, "gid_unique": unique,
            "duplicate_gid_sample": duplicates}
