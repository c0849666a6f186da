"""GADM 4.1's published shape: levels, layer names and column lists.

This module is the single source of truth for "what GADM looks like"; the
sample generator writes it, the layout detector recognises it and the loader
maps it onto the PostGIS output contract (lower-case column names).
"""

from __future__ import annotations

LEVELS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
SRID = 4326
GEOMETRY_COLUMN = "geom"

LEVELS_FILE = "gadm_410-levels.gpkg"
SINGLE_FILE = "gadm_410.gpkg"
SINGLE_LAYER = "gadm_410"
COUNTRY_FILE = "gadm41_{iso}.gpkg"

# Missing-value marker GADM writes into text fields.
NA_MARKER = "NA"


def levels_layer(level: int) -> str:
    """Layer name of `level` in the levels file (``ADM_3``)."""
    return f"ADM_{level}"


def country_layer(level: int) -> str:
    """Layer name of `level` in a per-country file (``ADM_ADM_3``)."""
    return f"ADM_ADM_{level}"


def gid_column(level: int) -> str:
    """The key column of a level (``GID_3``)."""
    return f"GID_{level}"


def table_name(level: int) -> str:
    """PostGIS table of a level in the output contract (``adm_3``)."""
    return f"adm_{level}"


def _own_columns(level: int) -> list[str]:
    """Columns a level adds for its own unit (GADM 4.1 levels file)."""
    if level == 0:
        return ["GID_0", "COUNTRY"]
    n = level
    cols = [f"GID_{n}", f"NAME_{n}"]
    if n <= 4:
        cols.append(f"VARNAME_{n}")
    if n <= 3:
        cols.append(f"NL_NAME_{n}")
    cols += [f"TYPE_{n}", f"ENGTYPE_{n}", f"CC_{n}"]
    if n <= 3:
        cols.append(f"HASC_{n}")
    if n == 1:
        cols.append("ISO_1")
    return cols


def level_columns(level: int) -> tuple[str, ...]:
    """Attribute columns of a level layer, in GADM 4.1 order (no geometry)."""
    if level not in LEVELS:
        raise ValueError(f"GADM level must be one of {LEVELS}, got {level!r}")
    cols = ["GID_0", "COUNTRY"]
    for k in range(1, level):
        cols += [f"GID_{k}", f"NAME_{k}"]
        if level <= 3:
            cols.append(f"NL_NAME_{k}")
    if level >= 1:
        cols += _own_columns(level)
    return tuple(cols)


def _single_level_columns(n: int) -> list[str]:
    cols = [f"GID_{n}", f"NAME_{n}"]
    if n <= 4:
        cols.append(f"VARNAME_{n}")
    if n <= 3:
        cols.append(f"NL_NAME_{n}")
    if n == 1:
        cols.append("ISO_1")
    if n <= 3:
        cols.append(f"HASC_{n}")
    cols += [f"CC_{n}", f"TYPE_{n}", f"ENGTYPE_{n}"]
    if n <= 4:
        cols.append(f"VALIDFR_{n}")
    return cols


# Columns of the single-layer distribution (one row per finest unit).
SINGLE_COLUMNS: tuple[str, ...] = tuple(
    ["UID", "GID_0", "NAME_0", "VARNAME_0"]
    + [c for n in range(1, 6) for c in _single_level_columns(n)]
    + ["GOVERNEDBY", "SOVEREIGN", "DISPUTEDBY", "REGION", "VARREGION",
       "COUNTRY", "CONTINENT", "SUBCONT"]
)

# GADM 4.1 feature counts per level (the real dataset, scale 1.0).
GADM41_COUNTS: dict[int, int] = {
    0: 263, 1: 3_662, 2: 47_217, 3: 144_193, 4: 153_410, 5: 51_427,
}


def output_column(source_column: str) -> str:
    """Column name in PostGIS for a GADM source column (lower case)."""
    return source_column.lower()
