"""The reference engine: pyogrio Arrow batches + vectorised Shapely 2.

(GeoPandas' own I/O stack, without building GeoDataFrames of whole layers.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import shapely

from .. import schema
from ..intermediate import IntermediateWriter
from ..layout import LevelSpec
from ..metrics import PhaseTimer, Progress
from .common import BatchFinisher, PreprocessResult, read_layer, replace_changed_wkb
from .dissolve import read_dissolved
from .geometry import clean, reproject

NAME = "geopandas"


def _name_null_geometries(finisher: BatchFinisher, batch, before: np.ndarray, after: np.ndarray) -> None:
    was_missing = shapely.is_missing(before) | shapely.is_empty(before)
    gids = batch.attrs.column(schema.gid_column(finisher.spec.level))
    for i in np.flatnonzero(shapely.is_missing(after)):
        reason = ("NULL or empty geometry" if was_missing[i]
                  else "no polygonal part left after make_valid") + "; kept with NULL geom"
        finisher.name_feature(batch.ref, batch.fids[i], gids[i].as_py(), reason)


def preprocess(spec: LevelSpec, out_path: Path, batch_rows: int, log: logging.Logger,
               timer: PhaseTimer) -> PreprocessResult:
    result = PreprocessResult(spec.level, spec.label, NAME)
    finisher = BatchFinisher(spec, result, log)
    progress = Progress(log, f"preprocess {spec.label}", spec.features)
    with IntermediateWriter(out_path, spec.level, spec.columns) as writer:
        for ref in spec.inputs:
            batches = (read_dissolved(ref, spec, batch_rows, result) if spec.layout == "single"
                       else read_layer(ref, spec, batch_rows))
            while True:
                with timer.phase("read"):
                    batch = next(batches, None)
                if batch is None:
                    break
                with timer.phase("transform"):
                    if spec.layout != "single":
                        result.rows_in += batch.attrs.num_rows
                    before = batch.geoms if batch.geoms is not None else shapely.from_wkb(batch.wkb)
                    geoms = before
                    if spec.source_crs:
                        geoms = reproject(geoms, spec.source_crs, result.geometry)
                    after = clean(geoms, result.geometry)
                    _name_null_geometries(finisher, batch, before, after)
                    wkb = replace_changed_wkb(batch.wkb, before, after) if batch.wkb is not None \
                        else shapely.to_wkb(after, flavor="iso")
                    table = finisher.finish(batch.attrs, batch.fids, wkb, batch.ref)
                with timer.phase("write"):
                    writer.write(table)
                progress.advance(table.num_rows)
    finisher.close()
    return result
