"""The per-level intermediate: a GeoParquet file between preprocess and load.

Columns: ``id``, ``parent_id`` (levels >= 1), the level's GADM columns in
lower case, ``geom`` (ISO WKB MultiPolygon or NULL). Written one record batch
at a time, read back the same way, so neither side holds a whole layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from . import schema

_CRS84_NOTE = "OGC:CRS84 (GeoParquet default) == EPSG:4326 with lon/lat axis order"


def arrow_schema(level: int, columns: list[str]) -> pa.Schema:
    fields = [pa.field("id", pa.int64(), nullable=False)]
    if level >= 1:
        fields.append(pa.field("parent_id", pa.int64()))
    fields += [pa.field(schema.output_column(c), pa.string()) for c in columns]
    fields.append(pa.field(schema.GEOMETRY_COLUMN, pa.binary()))
    geo = {
        "version": "1.1.0",
        "primary_column": schema.GEOMETRY_COLUMN,
        "columns": {schema.GEOMETRY_COLUMN: {
            "encoding": "WKB", "geometry_types": ["MultiPolygon"], "crs_note": _CRS84_NOTE}},
    }
    return pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})


class IntermediateWriter:
    """Append record batches to one level's GeoParquet file (atomic on close)."""

    def __init__(self, path: Path, level: int, columns: list[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = arrow_schema(level, columns)
        self._tmp = self.path.with_suffix(".parquet.part")
        # Text columns compress well; WKB coordinates hardly (-16%) and cost 4x the write and
        # 8x the read time compressed, so geometry is stored plain.
        compression = {name: "lz4" for name in self.schema.names}
        compression[schema.GEOMETRY_COLUMN] = "none"
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=compression)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        except OSError:
            pass  # e.g. the disk is full: the partial file goes anyway
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "IntermediateWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.abort() if exc_type else self.close()


def iter_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches of at most `batch_rows` that never span row groups.

    Each row group is one preprocess batch, already bounded by bytes as well as rows
    (level-0/1 features are MBs each); re-chunking across groups by rows alone would
    hold up to `batch_rows` of them at once."""
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        yield from parquet.read_row_group(group).to_batches(max_chunksize=batch_rows)


def row_count(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows
