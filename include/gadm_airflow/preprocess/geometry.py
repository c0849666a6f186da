"""Vectorised geometry clean-up shared by the engines (Shapely 2)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely import GeometryType

POLYGON, MULTIPOLYGON = GeometryType.POLYGON, GeometryType.MULTIPOLYGON
_COLLECTIONS = (GeometryType.MULTIPOINT, GeometryType.MULTILINESTRING, MULTIPOLYGON,
                GeometryType.GEOMETRYCOLLECTION)


# ISO WKB, little endian: a Polygon's header, and a MultiPolygon-of-one header to put in front.
_LE_POLYGON_TYPE = pa.scalar(b"\x03\x00\x00\x00", pa.binary())
_LE_MULTI_OF_ONE = pa.scalar(b"\x01\x06\x00\x00\x00\x01\x00\x00\x00", pa.binary())


@dataclass
class GeometryCounts:
    repaired: int = 0          # invalid geometries made valid
    promoted: int = 0          # Polygon rows turned into MultiPolygon
    dropped_parts: int = 0     # line/point parts make_valid produced, dropped
    null_geometries: int = 0   # NULL/empty, or nothing polygonal left after repair
    reprojected: int = 0

    def add(self, other: "GeometryCounts") -> None:
        for k, v in vars(other).items():
            setattr(self, k, getattr(self, k) + v)


def polygonal_multi(geoms: np.ndarray, counts: GeometryCounts) -> np.ndarray:
    """Keep only the polygonal parts of each geometry, as MultiPolygons (None if none)."""
    out = np.full(len(geoms), None, dtype=object)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    while True:  # flatten collections of multis (make_valid can nest them)
        nested = shapely.get_num_geometries(parts) > 1
        nested |= np.isin(shapely.get_type_id(parts), _COLLECTIONS)
        if not nested.any():
            break
        sub, sub_owner = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        owner = np.concatenate([owner[~nested], owner[nested][sub_owner]])
    is_poly = shapely.get_type_id(parts) == POLYGON
    counts.dropped_parts += int((~is_poly & ~shapely.is_empty(parts)).sum())
    keep = is_poly & ~shapely.is_empty(parts)
    if keep.any():
        order = np.argsort(owner[keep], kind="stable")
        shapely.multipolygons(parts[keep][order], indices=owner[keep][order], out=out)
    return out


_THREADS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None


def is_valid(geoms: np.ndarray) -> np.ndarray:
    """shapely.is_valid on all cores: GEOS releases the GIL, so chunks run in parallel threads.

    Validity checking is the largest single cost of preprocessing (every geometry is checked).
    """
    global _pool
    if _THREADS == 1 or len(geoms) < 256:
        return shapely.is_valid(geoms)
    if _pool is None:
        _pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="gadm-is-valid")
    return np.concatenate(list(_pool.map(shapely.is_valid, np.array_split(geoms, _THREADS))))


def clean(geoms: np.ndarray, counts: GeometryCounts) -> np.ndarray:
    """Repair invalid geometries, promote to MultiPolygon; NULL where nothing polygonal remains.

    Valid MultiPolygons are returned as the same objects, so callers can keep
    their original WKB for them (``changed`` mask = ``result is not input``).
    """
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    present = ~missing
    invalid = np.zeros(len(geoms), dtype=bool)
    invalid[present] = ~is_valid(geoms[present])
    counts.repaired += int(invalid.sum())
    if invalid.any():
        out[invalid] = polygonal_multi(shapely.make_valid(geoms[invalid]), counts)
    types = shapely.get_type_id(out)
    single = present & ~invalid & (types == POLYGON)
    counts.promoted += int(single.sum())
    if single.any():
        out[single] = shapely.multipolygons(out[single], indices=np.arange(int(single.sum())))
    other = present & ~invalid & (types != POLYGON) & (types != MULTIPOLYGON)
    if other.any():  # e.g. a GeometryCollection in a polygon layer
        out[other] = polygonal_multi(out[other], counts)
    nulls = shapely.is_missing(out) | shapely.is_empty(out)
    out[nulls] = None
    counts.null_geometries += int(nulls.sum())
    return out


def is_le_polygon_wkb(wkb: pa.Array) -> np.ndarray:
    """Rows that are little-endian 2D ISO WKB Polygons (what GDAL hands out)."""
    le = pc.equal(pc.binary_slice(wkb, 0, 1), pa.scalar(b"\x01", pa.binary()))
    polygon = pc.equal(pc.binary_slice(wkb, 1, 5), _LE_POLYGON_TYPE)
    return pc.fill_null(pc.and_(le, polygon), False).to_numpy(zero_copy_only=False)


def promote_polygon_wkb(wkb: pa.Array) -> pa.Array:
    """Polygon → MultiPolygon on WKB bytes (little-endian 2D Polygons): the same bytes
    Shapely writes for ``multipolygons([polygon])``, without decoding."""
    return pc.binary_join_element_wise(_LE_MULTI_OF_ONE, wkb, b"")


def splice_wkb(original: pa.Array, rows: np.ndarray, new: pa.Array) -> pa.Array:
    """`original` with its values at the ascending `rows` replaced by `new`'s, in order.

    Few rows change (repairs, promotions): the result is spliced from slices of the
    original, one copy of the bytes (pc.replace_with_mask is 30x slower on large binaries)."""
    if not len(rows):
        return original
    new = new.cast(original.type)
    pieces, start = [], 0
    for k, row in enumerate(rows.tolist()):
        pieces += [original.slice(start, row - start), new.slice(k, 1)]
        start = row + 1
    pieces.append(original.slice(start))
    return pa.concat_arrays(pieces)


def reproject(geoms: np.ndarray, crs: str, counts: GeometryCounts) -> np.ndarray:
    """Transform `geoms` from `crs` to EPSG:4326 (lon/lat)."""
    from pyproj import Transformer

    transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    counts.reprojected += int((~shapely.is_missing(geoms)).sum())
    return shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
