"""GADM-shaped sample generator: the data every demo, test and benchmark uses.

``generate(out_dir, scale=..., seed=..., layout=...)`` writes a synthetic
world with GADM 4.1's layers, columns, hierarchy, vertex profile and dirt
(see ``issues show 2``) and returns per-level statistics (also written to
``out_dir/stats.json``). Same scale + seed + layout give the same features on
every machine; the three layouts describe the same world.

Files per layout (names from :mod:`gadm_airflow.schema`):

* ``levels``  -> ``gadm_410-levels.gpkg`` with layers ``ADM_0`` .. ``ADM_5``
* ``single``  -> ``gadm_410.gpkg`` with layer ``gadm_410`` (one row per finest
  unit, every level's columns; columns of levels a unit lacks are ``""``)
* ``country`` -> one ``gadm41_XXX.gpkg`` per country, layers ``ADM_ADM_0`` ..
  ``ADM_ADM_N`` (N = that country's deepest level)

With ``zip=True`` each GeoPackage is also zipped as GADM ships it:
``gadm_410-levels.zip``, ``gadm_410-gpkg.zip``, or one ``gadm41_XXX.gpkg.zip``
per country (the GeoPackage is stored under its own name inside).

Geometry column ``geom``, declared MultiPolygon, EPSG:4326. Statistics:
``{"scale", "seed", "layout", "dirt", "levels": {"0": {...}, ..., "5": {...}},
"files", "seconds"}`` where each level has ``features``, ``mean_vertices``,
``max_vertices``, ``bytes`` (WKB of the geometries), and the planted dirt
``polygon_rows``, ``invalid_geometries``, ``na_strings`` and ``null_values``
(counted over that level's ``ADM_n`` table of the levels layout, whose
ancestor columns repeat the parents' values).

Modules: ``world`` (level 0: continents, islands, lakes, countries),
``geometry`` (fractal outlines, exact partitions), ``hierarchy`` (counts and
parents per level), ``attributes`` (codes, names, types), ``dirt``,
``writers`` (GeoPackage, zip), ``render`` (PNG), ``build`` (orchestration).
"""

from .build import LAYOUTS, generate
from .dirt import DirtRates
from .hierarchy import level_counts

__all__ = ["DirtRates", "LAYOUTS", "generate", "level_counts"]
