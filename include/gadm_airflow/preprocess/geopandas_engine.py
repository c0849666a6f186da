"""The reference engine: pyogrio Arrow batches + vectorised Shapely 2.

(GeoPandas' own I/O stack, without building GeoDataFrames of whole layers.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import shapely

from .. import schema
from ..layout import LevelSpec
from ..metrics import PhaseTimer
from .common import BatchFinisher, PreprocessResult, SourceBatch, replace_changed_wkb
from .driver import run_level
from .geometry import clean, reproject

NAME = "geopandas"


def _name_null_geometries(finisher: BatchFinisher, batch, before: np.ndarray, after: np.ndarray) -> None:
    was_missing = shapely.is_missing(before) | shapely.is_empty(before)
    gids = batch.attrs.column(schema.gid_column(finisher.spec.level))
    for i in np.flatnonzero(shapely.is_missing(after)):
        reason = ("NULL or empty geometry" if was_missing[i]
                  else "no polygonal part left after make_valid") + "; kept with NULL geom"
        finisher.name_feature(batch.ref, batch.fids[i], gids[i].as_py(), reason)


def _clean_batch(batch: SourceBatch, result: PreprocessResult, finisher: BatchFinisher):
    before = batch.geoms if batch.geoms is not None else shapely.from_wkb(batch.wkb)
    geoms = reproject(before, finisher.spec.source_crs, result.geometry) if finisher.spec.source_crs else before
    after = clean(geoms, result.geometry)
    _name_null_geometries(finisher, batch, before, after)
    if batch.wkb is None:
        return shapely.to_wkb(after, flavor="iso")
    return replace_changed_wkb(batch.wkb, before, after)


def preprocess(spec: LevelSpec, out_path: Path, batch_rows: int, log: logging.Logger,
               timer: PhaseTimer) -> PreprocessResult:
    return run_level(spec, out_path, batch_rows, log, timer, NAME, _clean_batch)
