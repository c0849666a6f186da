"""Deriving one level from the single-layer file (`gadm_410`).

The file holds one row per finest unit with every level's columns. Level n is
one row per distinct GID_n: rows are streamed ordered by GID_n (SQLite sorts
inside the GeoPackage), consecutive rows of a GID are grouped, the first row's
level-n attributes are kept and the geometries are unioned. Memory is bounded
by the largest unit's children, not by the layer.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyogrio
import shapely

from .. import schema
from ..errors import SourceError
from ..layout import LayerRef, LevelSpec
from .common import PreprocessResult, SourceBatch
from .geometry import GeometryCounts, clean


def _union(geoms: np.ndarray) -> shapely.Geometry | None:
    geoms = geoms[~shapely.is_missing(geoms)]
    if len(geoms) == 0:
        return None
    if len(geoms) == 1:
        return geoms[0]
    try:  # fast path: GADM units tile their parent exactly
        merged = shapely.coverage_union_all(geoms)
        if shapely.is_valid(merged):
            return merged
    except shapely.errors.GEOSException:
        pass  # not a clean coverage (e.g. a repaired unit): the general union is exact
    return shapely.union_all(geoms)


def _query(ref: LayerRef, spec: LevelSpec) -> str:
    gid = schema.gid_column(spec.level)
    cols = ", ".join(f'"{c}"' for c in spec.columns)
    return (f'SELECT fid AS src_fid, {cols}, geom FROM "{ref.layer}" '
            f"WHERE \"{gid}\" IS NOT NULL AND \"{gid}\" <> '' ORDER BY \"{gid}\", fid")


def read_dissolved(ref: LayerRef, spec: LevelSpec, batch_rows: int,
                   result: PreprocessResult) -> Iterator[SourceBatch]:
    """Yield batches of dissolved level-n units (geometry as Shapely objects)."""
    gid_col = schema.gid_column(spec.level)
    pending: list[tuple[pa.Table, np.ndarray, list[int]]] = []  # rows of the unfinished group(s)
    try:
        with pyogrio.open_arrow(ref.path, sql=_query(ref, spec), batch_size=batch_rows,
                                use_pyarrow=True, return_fids=True) as (meta, reader):
            geom_col = meta.get("geometry_name") or "geom"
            fid_col = meta.get("fid_column") or "src_fid"
            for batch in reader:
                table = pa.Table.from_batches([batch])
                result.rows_in += table.num_rows
                counts = GeometryCounts()
                geoms = clean(shapely.from_wkb(table.column(geom_col).combine_chunks()), counts)
                counts.null_geometries = 0  # counted on the dissolved units instead
                result.geometry.add(counts)
                pending.append((table.select(spec.columns), geoms, table.column(fid_col).to_pylist()))
                ready, pending = _split_last_group(pending, gid_col)
                if ready is not None:
                    yield _dissolve(ready, gid_col, ref)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise SourceError(f"{ref.path} layer {ref.layer}: read failed ({exc})") from exc
    if pending:
        yield _dissolve(_concat(pending), gid_col, ref)


def _concat(parts):
    tables, geoms, fids = zip(*parts)
    return pa.concat_tables(tables), np.concatenate(geoms), [f for fs in fids for f in fs]


def _split_last_group(pending, gid_col):
    """Everything before the last GID's rows is complete; keep the rest pending."""
    table, geoms, fids = _concat(pending)
    gids = table.column(gid_col).to_pylist()
    last = gids[-1]
    cut = len(gids)
    while cut > 0 and gids[cut - 1] == last:
        cut -= 1
    if cut == 0:
        return None, [(table, geoms, fids)]
    ready = (table.slice(0, cut), geoms[:cut], fids[:cut])
    rest = [(table.slice(cut), geoms[cut:], fids[cut:])]
    return ready, rest


def _dissolve(group_rows, gid_col: str, ref: LayerRef) -> SourceBatch:
    table, geoms, fids = group_rows
    gids = np.asarray(table.column(gid_col).to_pylist(), dtype=object)
    starts = np.flatnonzero(np.r_[True, gids[1:] != gids[:-1]])
    ends = np.r_[starts[1:], len(gids)]
    merged = np.array([_union(geoms[a:b]) for a, b in zip(starts, ends)], dtype=object)
    return SourceBatch(table.take(starts), [fids[a] for a in starts], None, ref, geoms=merged)
