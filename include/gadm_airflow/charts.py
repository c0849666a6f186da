"""Pictures of loads, drawn server-side with matplotlib (no display, no tiles).

- `summary_chart`: one run's benchmark summary (seconds per phase and rows/s per level).
- `history_chart`: load time and rows/s per level across the last runs (`load_runs`).
- `map_thumbnail`: a small map of one published level table, simplified in PostGIS.
"""

from __future__ import annotations

import io

import matplotlib
import psycopg
import shapely
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath
from psycopg import sql

from . import schema
from .db import table
from .report import PHASES

LEVEL_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
THUMB_PX = (320, 170)
THUMB_BACKGROUND = "#eef3f7"
THUMB_STATEMENT_TIMEOUT = "60s"


def _png(fig: Figure) -> bytes:
    """Figures are made without pyplot (Agg canvas, thread-safe in the api-server)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def summary_chart(summary: dict) -> bytes:
    """PNG: stacked seconds per phase and rows/s, one bar per level of one run."""
    levels = summary["levels"]
    labels = [r["layer"] for r in levels]
    fig = Figure(figsize=(9, 3.4))
    ax_t, ax_r = fig.subplots(1, 2)
    bottom = [0.0] * len(levels)
    for phase, colour in zip(PHASES, matplotlib.colormaps["tab10"].colors):
        values = [r["seconds"].get(phase, 0.0) for r in levels]
        ax_t.bar(labels, values, bottom=bottom, label=phase, color=colour)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax_t.set_title("seconds per level and phase")
    fig.legend(*ax_t.get_legend_handles_labels(), loc="lower center", ncols=len(PHASES), fontsize=7)
    ax_r.bar(labels, [r["rows_per_s"] or 0 for r in levels],
             color=[LEVEL_COLOURS[r["level"]] for r in levels])
    ax_r.set_title("rows/s per level")
    fig.suptitle(f"gadm_load, engine {summary['engine']}: {summary['total']['rows']} rows", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _png(fig)


def history_chart(runs: list[dict]) -> bytes:
    """PNG: per-level load seconds and rows/s across `runs` (oldest left), published runs only."""
    runs = [r for r in reversed(runs) if r["status"] == "published" and r["levels"]]
    fig = Figure(figsize=(9, 3.4))
    ax_t, ax_r = fig.subplots(1, 2)
    if not runs:
        for ax in (ax_t, ax_r):
            ax.text(0.5, 0.5, "no published runs yet", ha="center", va="center", transform=ax.transAxes)
    x_labels = [r["recorded_at"].strftime("%m-%d %H:%M:%S") for r in runs]
    for level in schema.LEVELS:
        points = [(i, lv) for i, r in enumerate(runs) for lv in r["levels"] if lv["level"] == level]
        if not points:
            continue
        xs = [i for i, _ in points]
        style = dict(marker="o", color=LEVEL_COLOURS[level], label=schema.levels_layer(level))
        ax_t.plot(xs, [lv["total_seconds"] for _, lv in points], **style)
        ax_r.plot(xs, [lv["rows_per_s"] or 0 for _, lv in points], **style)
    for ax, title in ((ax_t, "load time per level (s)"), (ax_r, "rows/s per level")):
        ax.set_title(title)
        ax.set_xticks(range(len(runs)), x_labels, rotation=30, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    if runs:
        ax_r.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _patches(geoms) -> list[PathPatch]:
    patches = []
    for geom in geoms:
        for poly in getattr(geom, "geoms", [geom]):
            if poly.geom_type != "Polygon" or poly.is_empty:
                continue
            rings = [poly.exterior, *poly.interiors]
            verts = [v for ring in rings for v in ring.coords]
            codes = [c for ring in rings for c in
                     [MplPath.MOVETO] + [MplPath.LINETO] * (len(ring.coords) - 2) + [MplPath.CLOSEPOLY]]
            patches.append(PathPatch(MplPath(verts, codes)))
    return patches


def map_thumbnail(conn: psycopg.Connection, target: str, level: int) -> bytes:
    """PNG: the level table `target.adm_<level>` simplified to about one pixel, drawn flat."""
    name = schema.table_name(level)
    geom = sql.Identifier(schema.GEOMETRY_COLUMN)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(THUMB_STATEMENT_TIMEOUT)))
        cur.execute(sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                            "(SELECT ST_Extent({g}) AS e FROM {t}) x").format(g=geom, t=table(target, name)))
        extent = cur.fetchone()
        if extent is None or extent[0] is None:
            raise LookupError(f"{target}.{name} has no geometries to draw")
        x0, y0, x1, y1 = extent
        tolerance = max(x1 - x0, y1 - y0) / THUMB_PX[0]
        cur.execute(sql.SQL("SELECT ST_AsBinary(s) FROM (SELECT ST_Simplify({g}, %s) AS s FROM {t} "
                            "WHERE {g} IS NOT NULL) x WHERE s IS NOT NULL AND NOT ST_IsEmpty(s)").format(
            g=geom, t=table(target, name)), (tolerance,))
        geoms = shapely.from_wkb([r[0] for r in cur.fetchall()])
    fig = Figure(figsize=(THUMB_PX[0] / 100, THUMB_PX[1] / 100), facecolor=THUMB_BACKGROUND)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.add_collection(PatchCollection(_patches(geoms), facecolor=LEVEL_COLOURS[level], edgecolor="white",
                                      linewidth=0.2, alpha=0.85))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_axis_off()
    return _png(fig)
