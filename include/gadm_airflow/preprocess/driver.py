"""The loop every engine shares: bounded batches in, intermediate rows out.

An engine only supplies ``clean_batch(batch, result, finisher) -> WKB``: the
cleaned geometries of one batch, counted in ``result.geometry`` and with
features that lost their geometry named through ``finisher``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pyarrow as pa

from ..intermediate import IntermediateWriter
from ..layout import LevelSpec
from ..metrics import PhaseTimer, Progress
from .common import BatchFinisher, PreprocessResult, SourceBatch, read_layer
from .dissolve import read_dissolved

CleanBatch = Callable[[SourceBatch, PreprocessResult, BatchFinisher], pa.Array]


def run_level(spec: LevelSpec, out_path: Path, batch_rows: int, log: logging.Logger,
              timer: PhaseTimer, engine: str, clean_batch: CleanBatch) -> PreprocessResult:
    result = PreprocessResult(spec.level, spec.label, engine)
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
                    if spec.layout != "single":  # dissolved batches count their source rows
                        result.rows_in += batch.attrs.num_rows
                    wkb = clean_batch(batch, result, finisher)
                    table = finisher.finish(batch.attrs, batch.fids, wkb, batch.ref)
                with timer.phase("write"):
                    writer.write(table)
                progress.advance(table.num_rows)
    finisher.close()
    return result
