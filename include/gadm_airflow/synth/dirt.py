"""GADM's dirt, planted at small configurable rates.

* Polygon rows among the MultiPolygons (only single-part units can be
  stored as Polygon; the rate is relative to all features of a level).
* Invalid geometries: two consecutive vertices of an outer ring swapped, a
  small bowtie that :func:`shapely.make_valid` repairs into a polygonal
  geometry (checked when planted).
* Literal ``"NA"`` strings and NULLs in the VARNAME/NL_NAME/HASC/CC fields.

Key columns (GID_n, NAME_n, COUNTRY) and everything else stay clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gadm_airflow.schema import NA_MARKER

# Own fields of a unit that may carry "NA" or NULL.
DIRTY_FIELDS = ("VARNAME", "NL_NAME", "HASC", "CC")


@dataclass(frozen=True)
class DirtRates:
    """Probabilities per feature (geometry) or per field value (strings)."""

    invalid: float = 0.002
    polygon: float = 0.02
    na: float = 0.03
    null: float = 0.02

    def __post_init__(self):
        for name in ("invalid", "polygon", "na", "null"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"dirt rate {name} must be in [0, 1], got {v!r}")
        if self.na + self.null > 1:
            raise ValueError("dirt rates na + null must not exceed 1")


def dirty_strings(values: list, rates: DirtRates, rng: np.random.Generator) -> list:
    """Replace values by "NA" (rate na) or None (rate null)."""
    u = rng.random(len(values))
    out = list(values)
    for i in np.flatnonzero(u < rates.na + rates.null):
        out[i] = NA_MARKER if u[i] < rates.na else None
    return out


def _bowtie(geom, rng: np.random.Generator):
    """`geom` with two consecutive outer-ring vertices swapped, or None."""
    parts = shapely.get_parts(geom)
    big = int(np.argmax(shapely.get_num_coordinates(parts)))
    poly = parts[big]
    shell = shapely.get_coordinates(poly.exterior)
    holes = [shapely.get_coordinates(r) for r in poly.interiors]
    if len(shell) < 8:
        return None
    for _ in range(20):
        i = int(rng.integers(1, len(shell) - 3))
        bad = shell.copy()
        bad[[i, i + 1]] = bad[[i + 1, i]]
        new = shapely.Polygon(bad, holes)
        cand = parts.copy()
        cand[big] = new
        out = shapely.multipolygons(cand)
        if shapely.is_valid(out):
            continue
        fixed = shapely.make_valid(out)
        if shapely.get_type_id(fixed) in (3, 6):
            return out
    return None


def plant_geometry(geoms: np.ndarray, rates: DirtRates,
                   rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Plant invalid and Polygon rows in MultiPolygons `geoms`.

    Returns (geometries, invalid count, polygon-row count).
    """
    n = len(geoms)
    out = geoms.copy()
    u_inv = rng.random(n)
    u_poly = rng.random(n)
    n_invalid = 0
    for i in np.flatnonzero(u_inv < rates.invalid):
        bad = _bowtie(out[i], rng)
        if bad is not None:
            out[i] = bad
            n_invalid += 1
    nparts = shapely.get_num_geometries(out)
    single = nparts == 1
    frac = single.mean() if n else 0.0
    p = min(1.0, rates.polygon / frac) if frac > 0 else 0.0
    to_poly = np.flatnonzero(single & (u_poly < p))
    if to_poly.size:
        out[to_poly] = shapely.get_geometry(out[to_poly], 0)
    return out, n_invalid, int(to_poly.size)
