"""GeoPackage and zip output (pyogrio's Arrow writer, appended in batches)."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio

from gadm_airflow.schema import GEOMETRY_COLUMN, SRID

BATCH_ROWS = 20_000


def _table(columns: dict[str, list], wkb: list[bytes], int_columns=()) -> pa.Table:
    arrays = {}
    for name, values in columns.items():
        arrays[name] = pa.array(values, pa.int64() if name in int_columns else pa.string())
    arrays[GEOMETRY_COLUMN] = pa.array(wkb, pa.binary())
    return pa.table(arrays)


class GpkgWriter:
    """Writes layers of one GeoPackage; rows are buffered and appended."""

    def __init__(self, path: Path, layers: dict[str, tuple[str, ...]], int_columns=()):
        self.path = Path(path)
        if self.path.exists():
            self.path.unlink()
        self.columns = layers
        self.int_columns = set(int_columns)
        self.buffers: dict[str, tuple[dict[str, list], list]] = {}
        for layer in layers:  # create every layer, in order, empty
            self._write(layer, {c: [] for c in layers[layer]}, [], append=False)

    def _write(self, layer, columns, wkb, append):
        with warnings.catch_warnings():
            # Polygon rows among MultiPolygons are planted on purpose.
            warnings.filterwarnings("ignore", message="A geometry of type POLYGON")
            self._write_arrow(layer, columns, wkb, append)

    def _write_arrow(self, layer, columns, wkb, append):
        pyogrio.write_arrow(
            _table(columns, wkb, self.int_columns), self.path, layer=layer,
            driver="GPKG", geometry_name=GEOMETRY_COLUMN, geometry_type="MultiPolygon",
            crs=f"EPSG:{SRID}", append=append,
            layer_options=None if append else {"GEOMETRY_NAME": GEOMETRY_COLUMN},
        )

    def add(self, layer: str, columns: dict[str, list], wkb) -> None:
        cols, geoms = self.buffers.setdefault(
            layer, ({c: [] for c in self.columns[layer]}, []))
        for c in self.columns[layer]:
            cols[c].extend(columns[c])
        geoms.extend(wkb)
        if len(geoms) >= BATCH_ROWS:
            self.flush(layer)

    def flush(self, layer: str | None = None) -> None:
        for name in [layer] if layer else list(self.buffers):
            cols, geoms = self.buffers.pop(name, (None, None))
            if geoms:
                self._write(name, cols, geoms, append=True)

    def close(self) -> Path:
        self.flush()
        return self.path


def zip_file(src: Path, dest: Path) -> Path:
    """`dest` (deflate) holding `src` under its own name, as GADM ships them."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.write(src, arcname=Path(src).name)
    return dest


def as_object(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
