"""A picture of a generated sample: countries filled, levels 1-2 outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely


def render_png(wkb: dict[int, list], path: Path, *, width_px: int = 1300) -> Path:
    """Draw levels 0-2 (WKB lists per level) to `path` with matplotlib (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PatchCollection
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    geoms = {k: shapely.from_wkb(np.array(v, dtype=object)) for k, v in wkb.items() if v}
    x0, y0, x1, y1 = shapely.total_bounds(geoms[0])
    pad = 0.03 * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    tol = (x1 - x0) / width_px / 2
    aspect = (y1 - y0) / (x1 - x0)
    fig, ax = plt.subplots(figsize=(10, 10 * aspect), dpi=width_px / 10)
    ax.set_facecolor("#cfe3f3")
    cmap = plt.get_cmap("Pastel1")

    def patch(g):
        verts, codes = [], []
        for poly in shapely.get_parts(g):
            for ring in [poly.exterior, *poly.interiors]:
                xy = shapely.get_coordinates(ring)
                verts.append(xy)
                codes.append(np.r_[MPath.MOVETO, np.full(len(xy) - 2, MPath.LINETO),
                                   MPath.CLOSEPOLY])
        return PathPatch(MPath(np.concatenate(verts), np.concatenate(codes)))

    simple0 = shapely.simplify(geoms[0], tol)
    patches = [patch(g) for g in simple0]
    ax.add_collection(PatchCollection(
        patches, facecolor=[cmap(i % 9) for i in range(len(patches))],
        edgecolor="none"))
    for k, (lw, color) in {2: (0.25, "#8a8a8a"), 1: (0.6, "#4d4d4d"),
                           0: (1.1, "#1a1a1a")}.items():
        if k not in geoms:
            continue
        lines = shapely.get_parts(shapely.simplify(shapely.boundary(geoms[k]), tol))
        segs = [shapely.get_coordinates(g) for g in shapely.get_parts(lines)]
        ax.add_collection(LineCollection(segs, linewidths=lw, colors=color))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title("gadm-synth sample: countries (fill), levels 1 and 2 (lines)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
