"""Both preprocessing engines give identical intermediates, row by row, on the same source."""

from __future__ import annotations

import logging

import geopandas
import pyarrow.parquet as pq
import pytest
import shapely

from conftest import sample, sample_stats
from gadm_airflow import layout, preprocess, schema, source
from gadm_airflow.metrics import PhaseTimer
from gadm_airflow.settings import Settings

LOG = logging.getLogger("test_engines")
FILES = {"levels": schema.LEVELS_FILE, "single": schema.SINGLE_FILE, "country": ""}


def _plan(path, tmp_path, monkeypatch):
    monkeypatch.setenv("GADM_ALLOWED_ROOTS", f"{path.parent if path.is_file() else path}:{tmp_path}")
    return layout.plan(source.resolve(str(path), Settings.from_env()))


def _both(spec, tmp_path, batch_rows=50):
    out = {}
    for engine in preprocess.ENGINES:
        target = tmp_path / engine / f"{spec.label}.parquet"
        result = preprocess.run(spec, target, engine=engine, batch_rows=batch_rows, log=LOG, timer=PhaseTimer())
        counts = result.to_dict()
        assert counts.pop("engine") == engine
        out[engine] = (pq.read_table(target), counts)
    return out["geopandas"], out["sedonadb"]


def _assert_identical(spec, reference, other):
    (ref_table, ref_counts), (table, counts) = reference, other
    assert table.schema == ref_table.schema, spec.label
    assert table.num_rows == ref_table.num_rows, spec.label
    for name in ref_table.column_names:  # column by column, so a failure names the column and row
        a, b = ref_table.column(name).to_pylist(), table.column(name).to_pylist()
        bad = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        assert not bad, f"{spec.label} column {name}: rows {bad[:5]} differ"
    assert counts == ref_counts, spec.label
    geoms = shapely.from_wkb(table.column("geom").to_pylist())
    present = ~shapely.is_missing(geoms)
    assert shapely.is_valid(geoms[present]).all(), spec.label
    assert (shapely.get_type_id(geoms[present]) == shapely.GeometryType.MULTIPOLYGON).all(), spec.label


@pytest.mark.parametrize("layout_name", ["levels", "single", "country"])
def test_engines_identical_on_every_layout(layout_name, tmp_path, monkeypatch):
    folder = sample(layout_name, 0.002)
    path = folder / FILES[layout_name] if FILES[layout_name] else folder
    specs = _plan(path, tmp_path, monkeypatch)
    assert len(specs) == 6
    repaired = 0
    for spec in specs:
        reference, other = _both(spec, tmp_path)
        _assert_identical(spec, reference, other)
        repaired += reference[1]["repaired"]
    if layout_name != "single":  # dissolving may heal or create invalidity; the others must repair the planted ones
        planted = sum(v["invalid_geometries"] for v in sample_stats(folder)["levels"].values())
        assert planted > 0 and repaired == planted


def test_engines_identical_on_odd_geometries(tmp_path, monkeypatch):
    """Bow-tie, spike (repair leaves a line), Polygon, GeometryCollection, empty and NULL rows."""
    wkts = [
        "POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))",                      # bow-tie: repaired to 2 polygons
        "POLYGON ((0 0, 1 0, 1 1, 1 2, 1 1, 0 1, 0 0))",           # spike: polygon + dropped line
        "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))",                      # valid Polygon: promoted
        "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))",                    # kept byte for byte
        "GEOMETRYCOLLECTION (POLYGON ((0 0, 1 0, 1 1, 0 0)), POINT (5 5))",
        "POLYGON ((0 0, 1 1, 2 2, 0 0))",                           # collapses: nothing polygonal left
        "POLYGON EMPTY",
        None,
    ]
    n = len(wkts)
    columns = schema.level_columns(1)
    data = {c: [f"{c}-{i}" if i % 3 else "NA" for i in range(n)] for c in columns}
    data["GID_0"] = ["AAA"] * n
    data["GID_1"] = [f"AAA.{i}_1" for i in range(n)]
    frame = geopandas.GeoDataFrame(data, geometry=geopandas.GeoSeries.from_wkt(wkts), crs="EPSG:4326")
    path = tmp_path / "src" / schema.LEVELS_FILE
    path.parent.mkdir()
    frame.to_file(path, layer=schema.levels_layer(1), driver="GPKG", geometry_type="Unknown")
    (spec,) = _plan(path, tmp_path, monkeypatch)
    reference, other = _both(spec, tmp_path, batch_rows=3)
    _assert_identical(spec, reference, other)
    counts = reference[1]
    assert counts["repaired"] == 3 and counts["promoted"] == 1
    assert counts["null_geometries"] == 3 and counts["dropped_parts"] >= 2
