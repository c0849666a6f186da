"""Unit tests of the pure pieces: keys, geometry clean-up, EWKB, params, source rules."""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import pyarrow as pa
import pytest
import shapely

from gadm_airflow import db, keys, pipeline, source
from gadm_airflow.errors import ParameterError, SourceError
from gadm_airflow.preprocess.common import normalise_attributes
from gadm_airflow.preprocess.geometry import GeometryCounts, clean
from gadm_airflow.settings import Settings
from gadm_airflow.pgcopy import ewkb

BOWTIE = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])


def test_ids_are_stable_and_parent_ids_point_at_parent_ids():
    child = keys.IdAssigner(2)
    ids = child.ids(["XYZ.1.1_1", "XYZ.1.2_1"], [1, 2])
    assert list(ids) == list(keys.IdAssigner(2).ids(["XYZ.1.1_1", "XYZ.1.2_1"], [7, 8]))
    assert len(set(ids)) == 2 and all(i > 0 for i in ids)
    parent = keys.IdAssigner(1).ids(["XYZ.1_1"], [1])[0]
    assert keys.parent_ids(2, ["XYZ.1_1", None]) == [parent, None]


def test_duplicate_gids_get_distinct_ids_and_are_reported():
    assigner = keys.IdAssigner(3)
    ids = assigner.ids(["A.1.1.1_1", "A.1.1.1_1", None, None], [1, 2, 3, 4])
    assert len(set(ids)) == 4
    assert ids[0] == keys.unit_id(3, "A.1.1.1_1")
    assert assigner.duplicates() == {"A.1.1.1_1": 2}


def test_clean_repairs_promotes_and_keeps_valid_multipolygons_untouched():
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])
    line_only = shapely.Polygon([(0, 0), (1, 0), (2, 0), (0, 0)])  # collapses to a line
    counts = GeometryCounts()
    out = clean(np.array([BOWTIE, shapely.box(0, 0, 1, 1), multi, None, line_only], dtype=object), counts)
    assert out[2] is multi
    assert [g.geom_type if g is not None else None for g in out] == [
        "MultiPolygon", "MultiPolygon", "MultiPolygon", None, None]
    assert all(shapely.is_valid(g) for g in out if g is not None)
    assert out[0].area == pytest.approx(0.5)
    assert (counts.repaired, counts.promoted, counts.null_geometries) == (2, 1, 2)
    assert counts.dropped_parts >= 1


def test_na_marker_becomes_null_only_when_the_whole_value():
    table = pa.table({"NAME_1": ["NA", "Namibia", None], "HASC_1": ["NA.ER", "NA", "x"]})
    out, converted = normalise_attributes(table)
    assert out.column("NAME_1").to_pylist() == [None, "Namibia", None]
    assert out.column("HASC_1").to_pylist() == ["NA.ER", None, "x"]
    assert converted == 2


def test_ewkb_sets_srid_flag_and_4326_for_both_byte_orders():
    poly = shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])
    for order in (0, 1):
        raw = shapely.to_wkb(poly, byte_order=order, flavor="iso")
        out = ewkb(raw)
        fmt = "<I" if order == 1 else ">I"
        kind, srid = struct.unpack_from(fmt + fmt[1], out, 1)
        assert kind == 6 | 0x20000000 and srid == 4326
        assert shapely.from_wkb(out).equals(poly) and shapely.get_srid(shapely.from_wkb(out)) == 4326
    assert ewkb(None) is None


@pytest.mark.parametrize("name", ["gadm; DROP TABLE x", '"x"."y"', "Gadm", "", "pg_catalog", "a" * 49, None, 3])
def test_schema_names_are_validated(name):
    with pytest.raises(ParameterError, match="param 'schema'"):
        db.validate_schema(name)


@pytest.mark.parametrize("params, message", [
    ({"levels": [6]}, "param 'levels'"),
    ({"levels": []}, "param 'levels'"),
    ({"levels": ["6"]}, "param 'levels'"),  # "0".."5" (what the form sends) are accepted
    ({"batch_rows": 0}, "param 'batch_rows'"),
    ({"batch_rows": -5}, "param 'batch_rows'"),
    ({"batch_rows": 10**9}, "param 'batch_rows'"),
    ({"engine": "spark"}, "param 'engine'"),
    ({"postgres_conn_id": "x; y"}, "param 'postgres_conn_id'"),
])
def test_bad_params_are_refused_by_name(params, message):
    with pytest.raises(ParameterError, match=message):
        pipeline.validate_params(params)


def test_defaults_fill_in_missing_params():
    p = pipeline.validate_params({})
    assert p["schema"] == "gadm" and p["engine"] == "geopandas" and p["levels"] is None
    assert p["source"].endswith("gadm_410-levels.gpkg")


@pytest.fixture()
def roots(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("GADM_DATA_DIR", str(data))
    monkeypatch.setenv("GADM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GADM_ALLOWED_ROOTS", raising=False)
    return Settings.from_env()


def test_source_outside_allowed_roots_is_refused(roots, tmp_path):
    outside = tmp_path / "elsewhere.gpkg"
    outside.write_bytes(b"x")
    (roots.data_dir / "link.gpkg").symlink_to(outside)
    for raw in ("/etc/passwd", "file:///etc/passwd", "../elsewhere.gpkg", str(roots.data_dir / "link.gpkg")):
        with pytest.raises(SourceError, match="outside the allowed roots"):
            source.resolve(raw, roots)


def test_missing_source_and_empty_zip_are_named(roots):
    with pytest.raises(SourceError, match="no such file"):
        source.resolve(str(roots.data_dir / "nope.gpkg"), roots)
    empty = roots.data_dir / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "no data here")
    with pytest.raises(SourceError, match="holds no GeoPackage"):
        source.resolve(str(empty), roots)
    with pytest.raises(SourceError, match="unsupported scheme"):
        source.resolve("ftp://example.org/x.gpkg", roots)


def test_file_identity_changes_with_content(roots):
    f = roots.data_dir / "a.gpkg"
    f.write_bytes(b"one")
    first = source.file_identity(f, roots)
    assert first == source.file_identity(f, roots)
    f.write_bytes(b"two!")
    assert source.file_identity(f, roots)["sha256"] != first["sha256"]
