"""Reconcile staged tables with what preprocessing read, before publishing."""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from . import schema
from .db import table, transaction
from .errors import VerificationError

log = logging.getLogger(__name__)


def verify_level(cur: psycopg.Cursor, staging: str, level: int, expected_rows: int) -> dict:
    t = table(staging, schema.table_name(level))
    geom = sql.Identifier(schema.GEOMETRY_COLUMN)
    cur.execute(sql.SQL(
        "SELECT count(*), count({g}), count(*) FILTER (WHERE NOT ST_IsValid({g})), "
        "count(*) FILTER (WHERE GeometryType({g}) <> 'MULTIPOLYGON') FROM {t}").format(g=geom, t=t))
    rows, with_geom, invalid, not_multi = cur.fetchone()
    problems = []
    if rows != expected_rows:
        problems.append(f"{rows} rows staged, {expected_rows} preprocessed")
    if invalid:
        problems.append(f"{invalid} invalid geometries")
    if not_multi:
        problems.append(f"{not_multi} geometries are not MultiPolygon")
    return {"level": level, "rows": rows, "rows_with_geom": with_geom, "invalid": invalid,
            "not_multipolygon": not_multi, "problems": problems}


def verify_all(conn: psycopg.Connection, staging: str, expected: dict[int, int]) -> list[dict]:
    """Check every staged level; raise VerificationError listing every mismatch."""
    with transaction(conn) as cur:
        results = [verify_level(cur, staging, level, rows) for level, rows in sorted(expected.items())]
    failed = [f"{schema.table_name(r['level'])}: {'; '.join(r['problems'])}" for r in results if r["problems"]]
    if failed:
        raise VerificationError("staged data does not reconcile, not publishing: " + " | ".join(failed))
    return results
