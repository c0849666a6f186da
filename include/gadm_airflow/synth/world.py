"""Level 0: continents and islands with fractal coasts, lakes, countries.

Continents are partitioned into countries (so neighbouring countries share
their border exactly); some islands are countries of their own, every other
island joins the nearest country (multipart countries); lakes are holes.
The land area grows with the number of countries, so countries keep a
realistic size (and vertex count) at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .geometry import blob, partition, to_multi

COAST_SPACING = 0.0007       # degrees between coastline vertices
BORDER_VERTICES = 700        # vertices per country border edge (before bends)
COUNTRY_AREA = 45.0          # mean land area per country, square degrees
LON = (-179.0, 179.0)
LAT = (-58.0, 80.0)


@dataclass
class World:
    countries: np.ndarray      # MultiPolygon per country
    continent: np.ndarray      # index of the landmass group per country
    island_country: np.ndarray  # bool: country born on an island


def _pad(g, gap: float):
    """A cheap outer envelope of `g`: its convex hull grown by `gap`."""
    return shapely.buffer(shapely.convex_hull(g), gap, quad_segs=2)


def _fits(g, land: list, gap: float) -> bool:
    """Inside the map and at least about `gap` away from all (prepared) land."""
    b = shapely.bounds(g)
    if not (LON[0] <= b[0] and b[2] <= LON[1] and LAT[0] <= b[1] and b[3] <= LAT[1]):
        return False
    pad = _pad(g, gap)
    return not any(shapely.intersects(other, pad) for other in land)


def build_world(n0: int, rng: np.random.Generator) -> World:
    """Countries (MultiPolygons) of a world with `n0` countries."""
    n_cont = int(np.clip(round(n0 / 40), 1, 7))
    land_area = n0 * COUNTRY_AREA
    width = min(LON[1] - LON[0], float(np.sqrt(land_area / 0.3 * 2.6)))
    height = min(LAT[1] - LAT[0], width / 2.6 * 1.3)
    cols = int(np.ceil(np.sqrt(n_cont * width / height)))
    rows = int(np.ceil(n_cont / cols))
    cw, ch = width / cols, height / rows
    x0 = -width / 2
    y0 = (LAT[0] + LAT[1]) / 2 - height / 2

    land: list = []
    continents = []
    share = rng.dirichlet(np.full(n_cont, 4.0))
    for i in range(n_cont):
        cx = x0 + (i % cols + 0.5) * cw
        cy = y0 + (i // cols + 0.5) * ch
        r = min(np.sqrt(land_area * 0.85 * share[i] / np.pi), 0.3 * min(cw, ch))
        for _ in range(60):
            g = blob(rng, cx + rng.uniform(-0.05, 0.05) * cw,
                     cy + rng.uniform(-0.05, 0.05) * ch, r, COAST_SPACING,
                     aspect=rng.uniform(0.8, 1.25))
            if _fits(g, land, 0.5):
                break
            r *= 0.9
        else:
            raise RuntimeError("could not place a continent")
        shapely.prepare(g)
        land.append(g)
        continents.append(g)

    # Islands: near the continents (offshore) and a few open-sea ones.
    n_isl = 2 * n0 + 3
    islands = []
    tries = 0
    while len(islands) < n_isl and tries < 40 * n_isl:
        tries += 1
        r = float(np.clip(rng.lognormal(np.log(0.35), 0.8), 0.04, 2.5))
        c = int(rng.integers(0, n_cont))
        bx = shapely.bounds(continents[c])
        ang = rng.uniform(0, 2 * np.pi)
        ccx, ccy = (bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2
        rad = max(bx[2] - bx[0], bx[3] - bx[1]) / 2 * rng.uniform(0.6, 1.3)
        g = blob(rng, ccx + rad * np.cos(ang), ccy + rad * np.sin(ang), r,
                 COAST_SPACING, aspect=rng.uniform(0.6, 1.6))
        if _fits(g, land, 0.05):
            shapely.prepare(g)
            land.append(g)
            islands.append(g)
    islands = np.array(islands, dtype=object)

    # Lakes become holes of the continents.
    lakes: list[list] = [[] for _ in range(n_cont)]
    for _ in range(max(2, n0 // 4)):
        c = int(rng.integers(0, n_cont))
        cont = continents[c]
        b = shapely.bounds(cont)
        for _ in range(200):
            x, y = rng.uniform(b[0], b[2]), rng.uniform(b[1], b[3])
            r = float(np.clip(rng.lognormal(np.log(0.3), 0.6), 0.05, 1.5))
            lake = blob(rng, x, y, r, COAST_SPACING * 1.5)
            pad = _pad(lake, 0.2)
            if (shapely.contains(cont, pad)
                    and not any(shapely.intersects(o, pad) for o in lakes[c])):
                lakes[c].append(lake)
                break
    conts = np.array([
        shapely.Polygon(shapely.get_coordinates(c.exterior),
                        [shapely.get_coordinates(lk.exterior) for lk in lakes[i]])
        for i, c in enumerate(continents)], dtype=object)

    # Countries: island countries take one island each, the rest share the
    # continents in proportion to their area.
    n_island_c = int(min(len(islands), round(0.12 * n0))) if n0 >= 5 else 0
    n_cont_c = n0 - n_island_c
    assert n_cont_c >= n_cont
    area = shapely.area(conts)
    per = np.ones(n_cont, dtype=np.int64)
    per += rng.multinomial(n_cont_c - n_cont, area / area.sum())
    cont_countries, _ = partition(conts, per, rng, vertices_per_edge=BORDER_VERTICES)
    cont_of = np.repeat(np.arange(n_cont), per)
    isl_area = shapely.area(islands) if len(islands) else np.zeros(0)
    big = np.argsort(-isl_area, kind="stable")[: max(n_island_c * 2, 1)]
    core = np.sort(rng.choice(big, size=n_island_c, replace=False)) if n_island_c else np.zeros(0, int)
    countries = np.concatenate([cont_countries, islands[core]])
    others = np.setdiff1d(np.arange(len(islands)), core)
    tree = shapely.STRtree(countries)
    near = np.full(len(others), -1, dtype=np.int64)
    if others.size:
        qi, ti = tree.query_nearest(shapely.point_on_surface(islands[others]))
        _, first = np.unique(qi, return_index=True)
        near = ti[first]
    parts = [shapely.get_parts(countries)]
    owner = [shapely.get_parts(countries, return_index=True)[1]]
    parts.append(islands[others])
    owner.append(near)
    parts = np.concatenate(parts)
    owner = np.concatenate(owner)
    order = np.argsort(owner, kind="stable")
    multi = shapely.multipolygons(parts[order], indices=owner[order])
    # Landmass group of island countries: the nearest continent.
    isl_cont = np.zeros(n_island_c, dtype=np.int64)
    if n_island_c:
        ctree = shapely.STRtree(conts)
        qi, ti = ctree.query_nearest(shapely.point_on_surface(islands[core]))
        _, first = np.unique(qi, return_index=True)
        isl_cont = ti[first]
    return World(
        countries=to_multi(multi),
        continent=np.concatenate([cont_of, isl_cont]),
        island_country=np.concatenate([np.zeros(n_cont_c, bool), np.ones(n_island_c, bool)]),
    )
