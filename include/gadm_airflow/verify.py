"""Reconcile staged tables with what preprocessing produced, before publishing.

Per level: row count, an order-independent checksum of every row's id and
attribute columns (parent_id is left out: linking nulls orphans' on purpose) (computed the same way in Python while
preprocessing and in SQL on the staged table), geometry validity and type,
and FK completeness (every child with a parent GID either links or was
reported as an orphan).
"""

from __future__ import annotations

import hashlib
import logging

import psycopg
from psycopg import sql

from . import schema
from .db import table, transaction
from .errors import VerificationError

log = logging.getLogger(__name__)

_SEP = "\x1f"
_NULL = "\\N"


MODULUS = 2**63


class RowChecksum:
    """Sum of the first 60 bits of md5(row text) over rows, modulo 2**63: order-independent
    and within a signed 64-bit int, which XComs between task processes require."""

    def __init__(self) -> None:
        self.value = 0

    def add(self, rows) -> None:
        for row in rows:
            text = _SEP.join(_NULL if v is None else str(v) for v in row)
            self.value = (self.value + int(hashlib.md5(text.encode()).hexdigest()[:15], 16)) % MODULUS


def checksum_sql(t: sql.Composable, names: list[str]) -> sql.Composed:
    parts = sql.SQL(", ").join(
        sql.SQL("coalesce({}::text, {})").format(sql.Identifier(n), sql.Literal(_NULL)) for n in names)
    return sql.SQL("SELECT coalesce(sum(('x' || substr(md5(concat_ws({sep}, {parts})), 1, 15))::bit(60)::bigint)"
                   " % {m}, 0) FROM {t}").format(sep=sql.Literal(_SEP), parts=parts, m=sql.Literal(MODULUS), t=t)


def verify_level(cur: psycopg.Cursor, staging: str, expected: dict, orphans: int) -> dict:
    level = expected["level"]
    t = table(staging, schema.table_name(level))
    geom = sql.Identifier(schema.GEOMETRY_COLUMN)
    cur.execute(sql.SQL(
        "SELECT count(*), count({g}), count(*) FILTER (WHERE NOT ST_IsValid({g})), "
        "count(*) FILTER (WHERE GeometryType({g}) <> 'MULTIPOLYGON') FROM {t}").format(g=geom, t=t))
    rows, with_geom, invalid, not_multi = cur.fetchone()
    names = ["id"] + [schema.output_column(c) for c in expected["columns"]]
    cur.execute(checksum_sql(t, names))
    checksum = int(cur.fetchone()[0])
    problems = []
    if rows != expected["rows_out"]:
        problems.append(f"{rows} rows staged, {expected['rows_out']} preprocessed")
    if with_geom != expected["rows_out"] - expected["null_geometries"]:
        problems.append(f"{with_geom} geometries staged, {expected['rows_out'] - expected['null_geometries']} expected")
    if checksum != expected["attribute_checksum"]:
        problems.append("attribute checksum differs from the preprocessed rows")
    if invalid:
        problems.append(f"{invalid} invalid geometries")
    if not_multi:
        problems.append(f"{not_multi} geometries are not MultiPolygon")
    if level >= 1:
        parent_gid = sql.Identifier(schema.output_column(schema.gid_column(level - 1)))
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE parent_id IS NULL AND {} IS NOT NULL")
                    .format(t, parent_gid))
        unlinked = cur.fetchone()[0]
        if unlinked != orphans:
            problems.append(f"{unlinked} rows have a parent GID but no parent_id; {orphans} orphans were reported")
    return {"level": level, "rows": rows, "rows_with_geom": with_geom, "invalid": invalid,
            "not_multipolygon": not_multi, "checksum_ok": checksum == expected["attribute_checksum"],
            "problems": problems}


def verify_all(conn: psycopg.Connection, staging: str, expected: list[dict], orphans: dict[int, int]) -> list[dict]:
    """Check every staged level; raise VerificationError listing every mismatch."""
    with transaction(conn) as cur:
        # Geometry rows are small (values are TOASTed): let the planner scan them in parallel anyway.
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
            cur.execute(sql.SQL("SET LOCAL {} = 0").format(sql.Identifier(setting)))
        results = [verify_level(cur, staging, e, orphans.get(e["level"], 0)) for e in expected]
    failed = [f"{schema.table_name(r['level'])}: {'; '.join(r['problems'])}" for r in results if r["problems"]]
    if failed:
        raise VerificationError("staged data does not reconcile, not publishing: " + " | ".join(failed))
    log.info("verified %s: counts, checksums, geometry validity and FK completeness reconcile",
             ", ".join(schema.table_name(r["level"]) for r in results))
    return results
