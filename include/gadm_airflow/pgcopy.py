"""PostgreSQL binary COPY encoding of Arrow record batches, vectorised.

Each field becomes an Arrow binary column holding its COPY encoding (4-byte
big-endian length, then the value; length -1 for NULL), the fields are
concatenated row-wise by one Arrow kernel and the result's data buffer is the
COPY stream: no Python object per row or per value.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import schema

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_NULL = pa.scalar(b"\xff\xff\xff\xff", pa.large_binary())
_EMPTY = pa.scalar(b"", pa.large_binary())
_SRID_FLAG = 0x20000000
# ISO WKB little-endian MultiPolygon (2D) header, and its EWKB twin with SRID 4326.
_ISO_MULTIPOLYGON = b"\x01" + struct.pack("<I", 6)
_EWKB_TYPE = np.frombuffer(struct.pack("<I", 6 | _SRID_FLAG), np.uint8)
_SRID_LE = np.frombuffer(struct.pack("<I", schema.SRID), np.uint8)


def ewkb(wkb: bytes | None) -> bytes | None:
    """ISO WKB → EWKB with SRID 4326 (what a typed geometry column's binary input wants)."""
    if wkb is None:
        return None
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack_from(order + "I", wkb, 1)
    return wkb[:1] + struct.pack(order + "II", kind | _SRID_FLAG, schema.SRID) + wkb[5:]


def _fixed(values: np.ndarray, width: int) -> pa.Array:
    """Rows of `width` bytes from an (n, width) uint8 matrix, as large_binary."""
    n = len(values)
    buf = pa.py_buffer(np.ascontiguousarray(values, dtype=np.uint8).tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, buf]).cast(pa.large_binary())


def _lengths(array: pa.Array) -> pa.Array:
    lengths = pc.fill_null(pc.binary_length(array), 0).to_numpy(zero_copy_only=False).astype(">i4")
    return _fixed(lengths.view(np.uint8).reshape(-1, 4), 4)


def _varlen_field(array: pa.Array) -> pa.Array:
    array = array.cast(pa.large_binary())
    field = pc.binary_join_element_wise(_lengths(array), pc.fill_null(array, _EMPTY), _EMPTY)
    return pc.if_else(pc.is_null(array), _NULL, field) if array.null_count else field


def _int8_field(array: pa.Array) -> pa.Array:
    n = len(array)
    rows = np.empty((n, 12), dtype=np.uint8)
    rows[:, :4] = np.frombuffer(struct.pack(">i", 8), dtype=np.uint8)
    values = pc.fill_null(array, 0).to_numpy(zero_copy_only=False).astype(">i8")
    rows[:, 4:] = values.view(np.uint8).reshape(n, 8)
    field = _fixed(rows, 12)
    return pc.if_else(pc.is_null(array), _NULL, field) if array.null_count else field


def ewkb_array(wkb: pa.Array) -> pa.Array:
    """ISO WKB → EWKB (SRID 4326) in numpy: for 2D little-endian MultiPolygons (what the
    engines write) the SRID flag is set and 4 SRID bytes are inserted after each header."""
    wkb = wkb.cast(pa.large_binary())
    n = len(wkb)
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int64, count=n + 1, offset=wkb.offset * 8)
    data = np.frombuffer(wkb.buffers()[2], dtype=np.uint8) if wkb.buffers()[2] else np.empty(0, np.uint8)
    present = np.diff(offsets) > 0
    starts = offsets[:-1][present]
    heads = data[starts[:, None] + np.arange(5)] if len(starts) else np.empty((0, 5), np.uint8)
    if not (heads == np.frombuffer(_ISO_MULTIPOLYGON, np.uint8)).all() or (np.diff(offsets)[present] < 9).any():
        return pa.array([ewkb(g) for g in wkb.to_pylist()], pa.large_binary())
    body = data[offsets[0]:offsets[-1]]
    out = np.insert(body, np.repeat(starts - offsets[0] + 5, 4), np.tile(_SRID_LE, len(starts)))
    new_offsets = offsets - offsets[0] + 4 * np.concatenate([[0], np.cumsum(present)])
    heads_at = new_offsets[:-1][present]
    out[heads_at[:, None] + np.arange(1, 5)] = _EWKB_TYPE
    array = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(new_offsets),
                                                                    pa.py_buffer(out)])
    return pc.if_else(pc.is_null(wkb), pa.scalar(None, pa.large_binary()), array) if wkb.null_count else array


def encode(batch: pa.RecordBatch | pa.Table, names: list[str], int8: set[str], geometry: str) -> memoryview:
    """The COPY BINARY tuples (no header/trailer) of `names` in `batch`."""
    fields = [_fixed(np.tile(np.frombuffer(struct.pack(">h", len(names)), np.uint8), (batch.num_rows, 1)), 2)]
    for name in names:
        column = batch.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if name in int8:
            fields.append(_int8_field(column))
        elif name == geometry:
            fields.append(_varlen_field(ewkb_array(column)))
        else:
            fields.append(_varlen_field(column))
    rows = pc.binary_join_element_wise(*fields, _EMPTY)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64, count=len(rows) + 1, offset=rows.offset * 8)
    return memoryview(rows.buffers()[2])[offsets[0]:offsets[-1]]
