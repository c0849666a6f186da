"""Engine-independent steps of preprocessing: reading GADM layers in bounded
batches, attribute normalisation, keys, and the per-level summary."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely

from .. import keys, schema
from ..errors import SourceError
from ..layout import LayerRef, LevelSpec
from ..verify import Checksums
from .geometry import GeometryCounts, splice_wkb

log = logging.getLogger(__name__)

# At most this many features are named one by one in the log per reason.
NAMED_FEATURES_MAX = 50
# WKB bytes per batch (the batch's working set in Shapely/Arrow is a few times this).
BATCH_BYTES = 32 << 20
SIZE_SAMPLE = 32


@dataclass
class SourceBatch:
    """One bounded slice of a source layer: GADM attribute columns, fids, WKB."""

    attrs: pa.Table
    fids: list[int]
    wkb: pa.Array | None
    ref: LayerRef
    geoms: np.ndarray | None = None  # already decoded (dissolved levels); then wkb is None


@dataclass
class PreprocessResult:
    level: int
    layer: str
    engine: str
    rows_in: int = 0
    rows_out: int = 0
    na_to_null: int = 0
    duplicate_gids: dict[str, int] = field(default_factory=dict)
    missing_gids: int = 0
    geometry: GeometryCounts = field(default_factory=GeometryCounts)
    bytes: int = 0
    attribute_checksum: int = 0
    geometry_checksum: int = 0

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(out.pop("geometry"))
        out["duplicate_gids"] = dict(list(self.duplicate_gids.items())[:20])
        out["duplicate_gid_count"] = len(self.duplicate_gids)
        return out


def _source_columns(ref: LayerRef, spec: LevelSpec) -> list[str]:
    fields = set(pyogrio.read_info(ref.path, layer=ref.layer)["fields"])
    return [c for c in spec.columns if c in fields]


def _with_all_columns(table: pa.Table, columns: list[str]) -> pa.Table:
    """Select `columns` in order, adding all-NULL columns a layer lacks."""
    n = table.num_rows
    arrays = [
        table.column(c).cast(pa.string()) if c in table.column_names else pa.nulls(n, pa.string())
        for c in columns
    ]
    return pa.table(arrays, names=columns)


def _plain_wkb(column: pa.ChunkedArray) -> pa.Array:
    """WKB as plain `binary` (pyogrio may hand out a geoarrow.wkb extension array)."""
    array = column.combine_chunks()
    if isinstance(array.type, pa.ExtensionType):
        array = array.storage
    return array.cast(pa.binary())


def rows_per_batch(ref: LayerRef, batch_rows: int) -> int:
    """`batch_rows`, or fewer where features are large: a batch holds at most about
    BATCH_BYTES of WKB, judged by the largest of the layer's first SIZE_SAMPLE features
    (a GADM country can be tens of MB, so rows alone do not bound memory at level 0)."""
    _, head = pyogrio.read_arrow(ref.path, layer=ref.layer, columns=[], max_features=SIZE_SAMPLE)
    if head.num_rows == 0 or head.num_columns == 0:
        return batch_rows
    largest = pc.max(pc.binary_length(_plain_wkb(head.column(head.num_columns - 1)))).as_py() or 1
    return max(1, min(batch_rows, BATCH_BYTES // largest))


def read_layer(ref: LayerRef, spec: LevelSpec, batch_rows: int) -> Iterator[SourceBatch]:
    """Stream one layer as Arrow record batches (never the whole layer)."""
    cols = _source_columns(ref, spec)
    try:
        with pyogrio.open_arrow(ref.path, layer=ref.layer, columns=cols,
                                batch_size=rows_per_batch(ref, batch_rows),
                                use_pyarrow=True, return_fids=True) as (meta, reader):
            fid_col = meta.get("fid_column") or "OGC_FID"
            geom_col = meta.get("geometry_name") or "wkb_geometry"
            for batch in reader:
                table = pa.Table.from_batches([batch])
                yield SourceBatch(_with_all_columns(table, spec.columns),
                                  table.column(fid_col).to_pylist(),
                                  _plain_wkb(table.column(geom_col)), ref)
    except pyogrio.errors.DataSourceError as exc:
        raise SourceError(f"{ref.path} layer {ref.layer}: read failed ({exc})") from exc
    except pyogrio.errors.DataLayerError as exc:
        raise SourceError(f"{ref.path} layer {ref.layer}: read failed ({exc})") from exc


def normalise_attributes(table: pa.Table) -> tuple[pa.Table, int]:
    """GADM's literal "NA" becomes NULL in every text column; returns the count."""
    converted = 0
    arrays = []
    for col in table.columns:
        is_na = pc.fill_null(pc.equal(col, schema.NA_MARKER), False)
        converted += pc.sum(is_na).as_py() or 0
        arrays.append(pc.if_else(is_na, pa.scalar(None, pa.string()), col))
    return pa.table(arrays, names=table.column_names), converted


def _parent_ids(level: int, parent_gids: pa.ChunkedArray) -> pa.Array:
    """`keys.parent_ids`, hashing each distinct parent GID of the batch once (siblings share it)."""
    distinct = pc.unique(parent_gids)
    hashed = pa.array(keys.parent_ids(level, distinct.to_pylist()), pa.int64())
    return pc.take(hashed, pc.index_in(parent_gids, value_set=distinct)).combine_chunks()


class BatchFinisher:
    """Turns cleaned batches into intermediate rows: keys, lower-case names."""

    def __init__(self, spec: LevelSpec, result: PreprocessResult, feature_log: logging.Logger):
        self.spec, self.result, self.log = spec, result, feature_log
        self.ids = keys.IdAssigner(spec.level)
        self.checksums = Checksums()
        self._named = 0

    def name_feature(self, ref: LayerRef, fid: int, gid: str | None, reason: str) -> None:
        self._named += 1
        if self._named <= NAMED_FEATURES_MAX:
            self.log.warning("%s layer %s fid %s (%s=%s): %s", ref.path, ref.layer, fid,
                             schema.gid_column(self.spec.level), gid, reason)
        elif self._named == NAMED_FEATURES_MAX + 1:
            self.log.warning("further features with issues are counted, not named")

    def finish(self, attrs: pa.Table, fids: list[int], wkb: pa.Array, ref: LayerRef) -> pa.Table:
        level = self.spec.level
        attrs, na = normalise_attributes(attrs)
        self.result.na_to_null += na
        gids = attrs.column(schema.gid_column(level)).to_pylist()
        for fid, gid in zip(fids, gids):
            if gid is None:
                self.result.missing_gids += 1
                self.name_feature(ref, fid, gid, "no GID; kept with a generated id, no children can link to it")
        columns = {"id": pa.array(self.ids.ids(gids, fids), pa.int64())}
        if level >= 1:
            columns["parent_id"] = _parent_ids(level, attrs.column(schema.gid_column(level - 1)))
        for name in attrs.column_names:
            columns[schema.output_column(name)] = attrs.column(name)
        wkb = pa.array(wkb, pa.binary()) if not isinstance(wkb, pa.Array) else wkb
        self.checksums.add([c for k, c in columns.items() if k != "parent_id"], wkb)
        columns[schema.GEOMETRY_COLUMN] = wkb
        self.result.rows_out += attrs.num_rows
        self.result.bytes += pc.sum(pc.binary_length(wkb)).as_py() or 0
        return pa.table(columns)

    def close(self) -> None:
        self.result.attribute_checksum = self.checksums.attributes
        self.result.geometry_checksum = self.checksums.geometry
        self.result.duplicate_gids = self.ids.duplicates()
        if self.result.duplicate_gids:
            sample = ", ".join(list(self.result.duplicate_gids)[:10])
            self.log.warning("%s: %d duplicated GIDs kept as separate rows (e.g. %s)",
                             self.spec.label, len(self.result.duplicate_gids), sample)


def replace_changed_wkb(original: pa.Array, before: np.ndarray, after: np.ndarray) -> pa.Array:
    """Original WKB where the geometry was kept as is, re-encoded WKB where it changed."""
    changed = np.flatnonzero(np.fromiter((a is not b for a, b in zip(after, before)), dtype=bool,
                                         count=len(after)))
    return splice_wkb(original, changed, pa.array(shapely.to_wkb(after[changed], flavor="iso"), pa.binary()))
