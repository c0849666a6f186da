"""Preprocessing memory is bounded by the batch size, not by the layer size.

A layer is built by repeating a sample level (GIDs made unique) to about
40 MB of geometry and to four times that; a preprocess run in a fresh process
on each must have about the same peak RSS. Holding the layer would add at
least its extra 120 MB of WKB; the bound allows half of that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import pytest

from conftest import ROOT, sample
from gadm_airflow import schema

LEVEL = 3
BATCH_ROWS = 200

RUN = """
import json, logging, resource, sys
from pathlib import Path
from gadm_airflow import layout, preprocess, source
from gadm_airflow.metrics import PhaseTimer
from gadm_airflow.settings import Settings
(spec,) = layout.plan(source.resolve(sys.argv[1], Settings.from_env()))
result = preprocess.run(spec, Path(sys.argv[2]), engine=sys.argv[3], batch_rows=int(sys.argv[4]),
                        log=logging.getLogger("memory"), timer=PhaseTimer())
print(json.dumps({"rows": result.rows_out, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _repeated_layer(tmp_path, base: pa.Table, copies: int) -> tuple[str, int]:
    gid = schema.gid_column(LEVEL)
    parts = [base.set_column(base.schema.get_field_index(gid), gid,
                             pc.binary_join_element_wise(base.column(gid), pa.scalar(f".r{k}"), ""))
             for k in range(copies)]
    table = pa.concat_tables(parts)
    path = tmp_path / f"x{copies}" / schema.LEVELS_FILE
    path.parent.mkdir()
    pyogrio.write_arrow(table, path, layer=schema.levels_layer(LEVEL), driver="GPKG", geometry_name="geom",
                        geometry_type="MultiPolygon", crs="EPSG:4326")
    return str(path), pc.sum(pc.binary_length(table.column("geom"))).as_py()


def _peak(path: str, tmp_path, engine: str) -> dict:
    env = dict(os.environ, GADM_ALLOWED_ROOTS=str(tmp_path), PYTHONPATH=str(ROOT / "include"))
    out = subprocess.run([sys.executable, "-c", RUN, path, str(tmp_path / f"{engine}.parquet"), engine,
                          str(BATCH_ROWS)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("memory")
    gpkg = sample("levels", 0.01) / schema.LEVELS_FILE
    _, base = pyogrio.read_arrow(gpkg, layer=schema.levels_layer(LEVEL))
    geom = base.column("geom").combine_chunks()
    base = base.set_column(base.schema.get_field_index("geom"), "geom",
                           geom.storage if isinstance(geom.type, pa.ExtensionType) else geom)
    copies = max(1, round(40e6 / pc.sum(pc.binary_length(base.column("geom"))).as_py()))
    return tmp_path, _repeated_layer(tmp_path, base, copies), _repeated_layer(tmp_path, base, 4 * copies)


@pytest.mark.parametrize("engine", ["geopandas", "sedonadb"])
def test_peak_rss_does_not_grow_with_the_layer(layers, engine):
    tmp_path, (small, small_bytes), (large, large_bytes) = layers
    one, four = _peak(small, tmp_path, engine), _peak(large, tmp_path, engine)
    assert four["rows"] == 4 * one["rows"]
    extra_mb = (large_bytes - small_bytes) / 2**20
    growth = four["peak_mb"] - one["peak_mb"]
    assert growth < 0.5 * extra_mb, (
        f"{engine}: peak RSS {one['peak_mb']:.0f} MB -> {four['peak_mb']:.0f} MB for a layer "
        f"{extra_mb:.0f} MB larger at batch_rows={BATCH_ROWS}")
