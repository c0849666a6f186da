"""Preprocess one GADM level into its GeoParquet intermediate.

Engines share one interface, ``preprocess(spec, out_path, batch_rows, log,
timer) -> PreprocessResult``, and must produce identical rows:

- ``geopandas``: pyogrio Arrow batches + Shapely 2 (the reference);
- ``sedonadb``: SedonaDB SQL (ST_IsValid / ST_MakeValid) over the same batches.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from ..errors import ParameterError
from ..layout import LevelSpec
from ..metrics import PhaseTimer
from .common import PreprocessResult

ENGINES = {
    "geopandas": "gadm_airflow.preprocess.geopandas_engine",
    "sedonadb": "gadm_airflow.preprocess.sedonadb_engine",
}


def run(spec: LevelSpec, out_path: Path, *, engine: str, batch_rows: int,
        log: logging.Logger, timer: PhaseTimer) -> PreprocessResult:
    if engine not in ENGINES:
        raise ParameterError(f"param 'engine': {engine!r} is not one of {sorted(ENGINES)}")
    module = importlib.import_module(ENGINES[engine])
    return module.preprocess(spec, Path(out_path), batch_rows, log, timer)


__all__ = ["ENGINES", "PreprocessResult", "run"]
