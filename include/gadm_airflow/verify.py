"""Reconcile staged tables with what preprocessing produced, before publishing.

Per level: row and geometry counts, an order-independent checksum of every
row's id and attribute columns (parent_id is left out: linking nulls orphans'
on purpose), a checksum of every geometry's WKB bytes, and FK completeness
(every child with a parent GID either links or was reported as an orphan).
Both checksums are computed the same way in Python while preprocessing and in
SQL on the staged table. Geometry validity is established once, in
preprocessing (GEOS `is_valid` of every geometry, repair of the invalid ones);
the geometry checksum proves the staged bytes are exactly those, which costs a
fifth of re-running `ST_IsValid` over every row on the server.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import psycopg
from psycopg import sql

from . import schema
from .db import table, transaction
from .errors import VerificationError

log = logging.getLogger(__name__)

_SEP = "\x1f"
_NULL = "\\N"
MODULUS = 2**63


def _digest_sum(values: pa.Array | pa.ChunkedArray, algorithm: str) -> int:
    """Sum over non-NULL values of the first 60 bits of their digest, modulo 2**63."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.large_binary())
    if values.null_count:
        values = values.filter(pc.is_valid(values))
    n = len(values)
    if n == 0:
        return 0
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64, count=n + 1, offset=values.offset * 8).tolist()
    data = memoryview(values.buffers()[2]) if values.buffers()[2] else memoryview(b"")
    digest = getattr(hashlib, algorithm)
    total = sum(int.from_bytes(digest(data[a:b]).digest()[:8], "big") >> 4
                for a, b in zip(offsets[:-1], offsets[1:]))
    return total % MODULUS


def row_texts(columns: list[pa.Array]) -> pa.Array:
    """Each row's values as text joined by a separator, NULL as \\N (as `checksums_sql` builds it)."""
    texts = [pc.fill_null(c.cast(pa.string()), _NULL) for c in columns]
    return pc.binary_join_element_wise(*texts, _SEP)


class Checksums:
    """The attribute and geometry checksums of one level, added to batch by batch.

    Order-independent sums of 60-bit digest prefixes, modulo 2**63 (they fit a signed
    64-bit int, which XComs between task processes require): md5 of each row's text,
    sha256 of each geometry's WKB (large values; OpenSSL's SHA extensions make it the faster)."""

    def __init__(self) -> None:
        self.attributes = 0
        self.geometry = 0

    def add(self, columns: list[pa.Array], wkb: pa.Array) -> None:
        self.attributes = (self.attributes + _digest_sum(row_texts(columns), "md5")) % MODULUS
        self.geometry = (self.geometry + _digest_sum(wkb, "sha256")) % MODULUS


def _digest_sum_sql(hex_digest: sql.Composable) -> sql.Composed:
    return sql.SQL("coalesce(sum(('x' || substr({}, 1, 15))::bit(60)::bigint) % {}, 0)").format(
        hex_digest, sql.Literal(MODULUS))


def checksums_sql(t: sql.Composable, names: list[str]) -> sql.Composed:
    """count(*), count(geom), attribute checksum, geometry checksum of table `t`."""
    parts = sql.SQL(", ").join(
        sql.SQL("coalesce({}::text, {})").format(sql.Identifier(n), sql.Literal(_NULL)) for n in names)
    geom = sql.Identifier(schema.GEOMETRY_COLUMN)
    return sql.SQL("SELECT count(*), count({g}), {attrs}, {geoms} FROM {t}").format(
        g=geom, t=t,
        attrs=_digest_sum_sql(sql.SQL("md5(concat_ws({}, {}))").format(sql.Literal(_SEP), parts)),
        geoms=_digest_sum_sql(sql.SQL("encode(sha256(ST_AsBinary({}, 'NDR')), 'hex')").format(geom)))


def verify_level(cur: psycopg.Cursor, staging: str, expected: dict, orphans: int) -> dict:
    level = expected["level"]
    t = table(staging, schema.table_name(level))
    names = ["id"] + [schema.output_column(c) for c in expected["columns"]]
    cur.execute(checksums_sql(t, names))
    rows, with_geom, attributes, geometry = (int(v) for v in cur.fetchone())
    problems = []
    if rows != expected["rows_out"]:
        problems.append(f"{rows} rows staged, {expected['rows_out']} preprocessed")
    if with_geom != expected["rows_out"] - expected["null_geometries"]:
        problems.append(f"{with_geom} geometries staged, "
                        f"{expected['rows_out'] - expected['null_geometries']} expected")
    for name, got in (("attribute_checksum", attributes), ("geometry_checksum", geometry)):
        if got != expected[name]:
            problems.append(f"{name.replace('_', ' ')} differs from the preprocessed rows")
    if level >= 1:
        parent_gid = sql.Identifier(schema.output_column(schema.gid_column(level - 1)))
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE parent_id IS NULL AND {} IS NOT NULL")
                    .format(t, parent_gid))
        unlinked = cur.fetchone()[0]
        if unlinked != orphans:
            problems.append(f"{unlinked} rows have a parent GID but no parent_id; {orphans} orphans were reported")
    return {"level": level, "rows": rows, "rows_with_geom": with_geom,
            "attribute_checksum_ok": attributes == expected["attribute_checksum"],
            "geometry_checksum_ok": geometry == expected["geometry_checksum"], "problems": problems}


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
    log.info("verified %s: row and geometry counts, attribute and geometry checksums, FK completeness",
             ", ".join(schema.table_name(r["level"]) for r in results))
    return results
