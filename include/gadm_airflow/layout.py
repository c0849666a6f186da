"""Recognise which GADM distribution a source is and plan one spec per level.

Layouts (GADM 4.1):
- ``levels``: one GeoPackage with layers ADM_0..ADM_5;
- ``single``: one GeoPackage with layer ``gadm_410`` (one row per finest unit,
  every level's columns); each level is derived by dissolving on GID_n;
- ``country``: per-country GeoPackages (layers ADM_ADM_0..ADM_ADM_N) or
  shapefiles (``gadm41_XXX_N.shp``), one file each or a folder/zip of them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

import pyogrio

from . import schema
from .errors import DataError, LayoutError, SchemaError, SourceError
from .source import ResolvedSource

_LEVELS_LAYER = re.compile(r"^ADM_([0-5])$")
_COUNTRY_LAYER = re.compile(r"^ADM_ADM_([0-5])$")
_COUNTRY_SHP = re.compile(r"^gadm\d+_([A-Z0-9]{3})_([0-5])$", re.IGNORECASE)


@dataclass(frozen=True)
class LayerRef:
    path: str
    layer: str


@dataclass
class LevelSpec:
    """Everything a preprocess task needs for one level; travels as an XCom."""

    level: int
    layout: str
    inputs: list[LayerRef]
    features: int              # source rows (distinct GID_n for `single`)
    columns: list[str]         # GADM source columns, in GADM order
    source_crs: str | None = None  # set when the source is not EPSG:4326
    source_id: str = ""        # sha256 of the source
    label: str = field(init=False)

    def __post_init__(self) -> None:
        self.label = schema.levels_layer(self.level)

    def to_xcom(self) -> dict:
        out = asdict(self)
        out.pop("label")
        return out

    @classmethod
    def from_xcom(cls, data: dict) -> "LevelSpec":
        data = dict(data)
        data["inputs"] = [LayerRef(**ref) for ref in data["inputs"]]
        return cls(**data)


def _layers(path: str) -> list[str]:
    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # GDAL raises DataSourceError subclasses
        raise SourceError(f"{path}: cannot be opened as a GeoPackage or shapefile ({exc})") from exc


def _candidates(dataset_paths) -> tuple[str, dict[int, list[LayerRef]]]:
    """Find the layout and, per level, the layers that hold it."""
    found: dict[str, dict[int, list[LayerRef]]] = {"levels": {}, "country": {}, "single": {}}
    seen_layers: list[str] = []
    for path in dataset_paths:
        layers = _layers(path)
        seen_layers += [f"{PurePosixPath(path).name}:{name}" for name in layers]
        for name in layers:
            if m := _LEVELS_LAYER.match(name):
                found["levels"].setdefault(int(m.group(1)), []).append(LayerRef(path, name))
            elif m := _COUNTRY_LAYER.match(name):
                found["country"].setdefault(int(m.group(1)), []).append(LayerRef(path, name))
            elif m := _COUNTRY_SHP.match(name):
                found["country"].setdefault(int(m.group(2)), []).append(LayerRef(path, name))
            elif name == schema.SINGLE_LAYER:
                for level in schema.LEVELS:
                    found["single"].setdefault(level, []).append(LayerRef(path, name))
    kinds = [k for k, v in found.items() if v]
    if not kinds:
        shown = ", ".join(seen_layers[:12]) or "none"
        raise LayoutError(
            f"{', '.join(dataset_paths)}: no GADM layers found (expected ADM_0..ADM_5, "
            f"ADM_ADM_0..ADM_ADM_5, gadm41_XXX_N.shp or {schema.SINGLE_LAYER}); layers: {shown}"
        )
    if len(kinds) > 1:
        raise LayoutError(f"{', '.join(dataset_paths)}: mixes GADM layouts {kinds}; load them separately")
    return kinds[0], found[kinds[0]]


def _check_layer(ref: LayerRef, required: str, level: int) -> tuple[list[str], str | None, int]:
    try:
        info = pyogrio.read_info(ref.path, layer=ref.layer)
    except Exception as exc:
        raise SourceError(f"{ref.path} layer {ref.layer}: cannot be read ({exc})") from exc
    fields = [str(f) for f in info["fields"]]
    if required not in fields:
        raise SchemaError(
            f"{ref.path} layer {ref.layer}: key column {required} missing (columns: {', '.join(fields)})"
        )
    geometry_type = str(info.get("geometry_type") or "")
    if "Polygon" not in geometry_type and geometry_type not in ("Unknown", "Geometry"):
        raise DataError(f"{ref.path} layer {ref.layer}: geometry type {geometry_type!r} is not polygonal")
    crs = info.get("crs")
    if not crs:
        raise DataError(f"{ref.path} layer {ref.layer}: no CRS; GADM is EPSG:4326, set one with ogr2ogr -a_srs")
    return fields, (None if crs.upper() == "EPSG:4326" else crs), int(info["features"])


def _distinct_count(ref: LayerRef, gid: str) -> int:
    table = pyogrio.read_arrow(
        ref.path,
        sql=f'SELECT COUNT(DISTINCT "{gid}") AS n FROM "{ref.layer}" WHERE "{gid}" IS NOT NULL AND "{gid}" <> \'\'',
        read_geometry=False,
    )[1]
    return int(table.column(0)[0].as_py())


def plan(resolved: ResolvedSource, levels: list[int] | None = None) -> list[LevelSpec]:
    """One `LevelSpec` per requested level present in the source."""
    layout, per_level = _candidates(resolved.dataset_paths)
    wanted = sorted(per_level) if levels is None else sorted(set(levels))
    specs: list[LevelSpec] = []
    for level in wanted:
        refs = per_level.get(level)
        if not refs:
            continue  # this source has no such level: nothing to load there
        gid = schema.gid_column(level)
        columns: list[str] = []
        crs_seen: set[str | None] = set()
        features = 0
        for ref in refs:
            fields, crs, count = _check_layer(ref, gid, level)
            crs_seen.add(crs)
            columns = [c for c in schema.level_columns(level) if c in fields] if not columns else columns
            features += _distinct_count(ref, gid) if layout == "single" else count
        if len(crs_seen) > 1:
            raise DataError(f"level {level}: input layers disagree on CRS {sorted(map(str, crs_seen))}")
        if layout == "single" and features == 0:
            continue  # no unit reaches this level
        specs.append(LevelSpec(level, layout, refs, features, columns,
                               source_crs=crs_seen.pop(), source_id=resolved.identity.get("sha256", "")))
    return specs
