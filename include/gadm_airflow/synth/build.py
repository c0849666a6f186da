"""Orchestration: plan the world, build each country, write one layout."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import shapely

from gadm_airflow import schema
from gadm_airflow.schema import LEVELS, NA_MARKER, SINGLE_COLUMNS, level_columns

from . import attributes as attr
from .dirt import DIRTY_FIELDS, DirtRates, dirty_strings, plant_geometry
from .geometry import partition, to_multi
from .hierarchy import level_counts, plan
from .world import build_world
from .writers import GpkgWriter, zip_file

LAYOUTS = ("levels", "single", "country")
# Vertices per new inland edge, by level (before inherited coast/borders).
VERTICES_PER_EDGE = {1: 260, 2: 130, 3: 75, 4: 60, 5: 50}


@dataclass
class CountryJob:
    index: int
    seed: int
    gid: str
    name: str
    variant: str
    script: str
    accent_rate: float
    continent: str
    subcont: str
    sovereign: str
    disputed_by: str
    wkb: bytes
    children: list  # child counts per level 1..5 (arrays over parent units)
    dirt: DirtRates
    want_single: bool
    want_png: bool


@dataclass
class CountryResult:
    gid: str
    depth: int
    levels: dict = field(default_factory=dict)   # k -> (columns, wkb list)
    single: tuple | None = None
    stats: dict = field(default_factory=dict)    # k -> partial stats
    png: dict = field(default_factory=dict)      # k -> wkb list (k <= 2)


def _abbr(name: str, n: int) -> str:
    letters = [ch for ch in attr.ascii_fold(name).upper() if ch.isalpha()]
    return ("".join(letters) + "XXX")[:n]


def build_country(job: CountryJob) -> CountryResult:
    """Every level of one country, with its attributes, dirt and tables."""
    rng = np.random.default_rng([job.seed, 3, job.index])
    namer = attr.NameMaker(rng, job.script, job.accent_rate)
    cc2 = job.gid[:2]
    geoms = {0: np.array([shapely.from_wkb(job.wkb)], dtype=object)}
    parent: dict[int, np.ndarray] = {}
    fields: dict[int, dict[str, list]] = {0: {"GID": [job.gid], "NAME": [job.name]}}
    linework = None  # boundaries of the current level, each border once
    for k in LEVELS[1:]:
        m = np.asarray(job.children[k - 1], dtype=np.int64)
        if m.size == 0 or m.sum() == 0:
            break
        kids, linework = partition(geoms[k - 1], m, rng, linework=linework,
                                   vertices_per_edge=VERTICES_PER_EDGE[k])
        par = np.repeat(np.arange(m.size), m)
        name, local, variant = namer.names(len(kids))
        order = np.lexsort((np.array(name, dtype=object).astype(str), par))
        kids, par = kids[order], par[order]
        name = [name[i] for i in order]
        local = [local[i] for i in order]
        variant = [variant[i] for i in order]
        first = np.searchsorted(par, par)
        num = np.arange(len(par)) - first + 1
        pf = fields[k - 1]
        if k == 1:
            gid = [f"{job.gid}.{i}_1" for i in num]
            cc = [f"{i:02d}" for i in num]
        else:
            gid = [f"{pf['GID'][p][:-2]}.{i}_1" for p, i in zip(par, num)]
            cc = [f"{pf['CC'][p]}{i:02d}" for p, i in zip(par, num)]
        hasc = iso = None
        if k == 1:
            hasc = [f"{cc2}.{_abbr(n, 2)}" for n in name]
            iso = [f"{cc2}-{_abbr(n, 3)}" for n in name]
        elif k <= 3:
            hasc = [f"{pf['HASC'][p]}.{_abbr(n, 2)}" for p, n in zip(par, name)]
        typ, eng = attr.types(rng, k, len(kids))
        validfr = [("Unknown" if u < 0.6 else f"{1950 + int(u * 70)}0101")
                   for u in rng.random(len(kids))]
        geoms[k] = kids
        parent[k] = par
        fields[k] = {"GID": gid, "NAME": name, "VARNAME": variant, "NL_NAME": local,
                     "TYPE": typ, "ENGTYPE": eng, "CC": cc, "HASC": hasc,
                     "ISO": iso, "VALIDFR": validfr}
    depth = max(geoms)

    # Dirt: strings first (clean values above built the codes), then shapes.
    res = CountryResult(gid=job.gid, depth=depth)
    for k in range(1, depth + 1):
        for f in DIRTY_FIELDS:
            if fields[k].get(f) is not None:
                fields[k][f] = dirty_strings(fields[k][f], job.dirt, rng)
    wkb: dict[int, list] = {}
    for k in range(depth + 1):
        g, n_inv, n_poly = plant_geometry(to_multi(geoms[k]), job.dirt, rng)
        w = shapely.to_wkb(g)
        wkb[k] = list(w)
        nv = shapely.get_num_coordinates(g)
        res.stats[k] = {"features": len(g), "vertices": int(nv.sum()),
                        "max_vertices": int(nv.max()),
                        "bytes": int(sum(len(b) for b in w)),
                        "polygon_rows": n_poly, "invalid_geometries": n_inv}
        if job.want_png and k <= 2:
            res.png[k] = wkb[k]

    # Ancestors: anc[k][j] = index of the level-j ancestor of level-k units.
    anc: dict[int, dict[int, np.ndarray]] = {}
    for k in range(depth + 1):
        anc[k] = {k: np.arange(len(geoms[k]))}
        for j in range(k - 1, -1, -1):
            anc[k][j] = parent[j + 1][anc[k][j + 1]]

    def values(col: str, k: int, rows: np.ndarray) -> list:
        """Column `col` of GADM for level-k units `rows`."""
        if col in ("GID_0",):
            return [job.gid] * len(rows)
        if col in ("COUNTRY", "NAME_0"):
            return [job.name] * len(rows)
        fld, lv = col.rsplit("_", 1)
        lv = int(lv)
        src = fields[lv][fld]
        a = anc[k][lv][rows]
        return [src[i] for i in a]

    for k in range(depth + 1):
        rows = np.arange(len(geoms[k]))
        cols = {c: values(c, k, rows) for c in level_columns(k)}
        na = sum(v.count(NA_MARKER) for c, v in cols.items())
        nulls = sum(v.count(None) for v in cols.values())
        res.levels[k] = (cols, wkb[k])
        res.stats[k].update(na_strings=na, null_values=nulls)

    if job.want_single:
        res.single = _single_rows(job, depth, geoms, parent, anc, values, wkb)
    return res


def _single_rows(job, depth, geoms, parent, anc, values, wkb):
    """Rows of the single-layer layout: every unit without children."""
    keys, per_level = [], []
    for k in range(depth + 1):
        n = len(geoms[k])
        has_kids = np.zeros(n, dtype=bool)
        if k + 1 in parent:
            has_kids[np.unique(parent[k + 1])] = True
        rows = np.flatnonzero(~has_kids)
        per_level.append((k, rows))
        key = [anc[k][j][rows] if j <= k else np.full(rows.size, -1)
               for j in range(1, 6)]
        keys.append(np.array(key).reshape(5, rows.size))
    key = np.concatenate(keys, axis=1)
    order = np.lexsort(key[::-1])
    cols: dict[str, list] = {c: [] for c in SINGLE_COLUMNS if c != "UID"}
    geo: list = []
    for k, rows in per_level:
        for c in cols:
            if c in ("GID_0", "NAME_0", "COUNTRY"):
                cols[c].extend(values(c, k, rows))
            elif c == "VARNAME_0":
                cols[c].extend([job.variant] * rows.size)
            elif c == "SOVEREIGN":
                cols[c].extend([job.sovereign] * rows.size)
            elif c == "DISPUTEDBY":
                cols[c].extend([job.disputed_by] * rows.size)
            elif c == "CONTINENT":
                cols[c].extend([job.continent] * rows.size)
            elif c == "SUBCONT":
                cols[c].extend([job.subcont] * rows.size)
            elif c in ("GOVERNEDBY", "REGION", "VARREGION"):
                cols[c].extend([""] * rows.size)
            else:
                lv = int(c.rsplit("_", 1)[1])
                cols[c].extend(values(c, k, rows) if lv <= k else [""] * rows.size)
        geo.extend(wkb[k][i] for i in rows)
    cols = {c: [v[i] for i in order] for c, v in cols.items()}
    return cols, [geo[i] for i in order]


def _country_jobs(counts, seed, dirt, want_single, want_png):
    n0 = counts[0]
    world = build_world(n0, np.random.default_rng([seed, 0]))
    rng = np.random.default_rng([seed, 1])
    area = shapely.area(world.countries)
    n_z = min(9, (n0 + 9) // 12)
    codes = attr.country_codes(rng, n0, n_z)
    smallest = np.argsort(area, kind="stable")[:n_z]
    rest = np.setdiff1d(np.arange(n0), smallest)
    code = np.empty(n0, dtype=object)
    code[rest] = codes[: n0 - n_z]
    code[smallest] = codes[n0 - n_z:]
    perm = np.argsort(code.astype(str), kind="stable")
    geoms, area, code = world.countries[perm], area[perm], code[perm]
    cont = world.continent[perm]
    scripts = np.array(attr.SCRIPTS)[(np.arange(n0) + rng.integers(0, 4)) % 4]
    scripts = scripts[rng.permutation(n0)]
    accent = np.where(rng.random(n0) < 0.5, 0.25, 0.03)
    namer = attr.NameMaker(rng, "latin", 0.3)
    names, _, variants = namer.names(n0)
    cont_names = np.array(attr.CONTINENTS)[rng.permutation(len(attr.CONTINENTS))]
    sub = rng.integers(0, len(attr.SUBREGIONS), n0)
    deep = int(np.argmax(np.where(np.char.startswith(code.astype(str), "Z"), -1, area)))
    hier = plan(counts, np.sqrt(area), deep, np.random.default_rng([seed, 2]))
    jobs = []
    real = [i for i in range(n0) if not code[i].startswith("Z")]
    for i in range(n0):
        z = code[i].startswith("Z")
        claim = [names[j] for j in real[:2]] if z and real else []
        cname = cont_names[cont[i] % len(cont_names)]
        jobs.append(CountryJob(
            index=i, seed=seed, gid=str(code[i]), name=names[i],
            variant=variants[i], script=str(scripts[i]),
            accent_rate=float(accent[i]), continent=str(cname),
            subcont=f"{attr.SUBREGIONS[sub[i]]} {cname}",
            sovereign=(claim[0] if claim else names[i]),
            disputed_by="|".join(claim), wkb=shapely.to_wkb(geoms[i]),
            children=hier.slice_for(i), dirt=dirt, want_single=want_single,
            want_png=want_png))
    return jobs


def _results(jobs, workers):
    if workers <= 1:
        for job in jobs:
            yield build_country(job)
        return
    # In order, with few results in flight (memory stays bounded: a result
    # holds a whole country).
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(build_country, job))
            if len(pending) > workers + 1:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def generate(out_dir, *, scale: float, seed: int = 0, layout: str = "levels",
             zip: bool = False, dirt: DirtRates | None = None,
             workers: int | None = None, png=None) -> dict:
    """Generate a GADM-shaped sample in `out_dir`; return (and write) stats.

    See the package docstring for the files written per layout.
    """
    t0 = time.perf_counter()
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dirt = dirt or DirtRates()
    counts = level_counts(scale)
    if workers is None:
        workers = 1 if counts[0] < 8 else min(4, os.cpu_count() or 1)
    jobs = _country_jobs(counts, seed, dirt, layout == "single", png is not None)
    files: list[Path] = []
    writer = None
    if layout == "levels":
        writer = GpkgWriter(out / schema.LEVELS_FILE,
                            {schema.levels_layer(k): level_columns(k) for k in LEVELS})
    elif layout == "single":
        writer = GpkgWriter(out / schema.SINGLE_FILE,
                            {schema.SINGLE_LAYER: SINGLE_COLUMNS}, int_columns={"UID"})
    totals = {k: {"features": 0, "vertices": 0, "max_vertices": 0, "bytes": 0,
                  "polygon_rows": 0, "invalid_geometries": 0, "na_strings": 0,
                  "null_values": 0} for k in LEVELS}
    png_wkb: dict[int, list] = {0: [], 1: [], 2: []}
    uid = 0
    for res in _results(jobs, workers):
        for k, s in res.stats.items():
            t = totals[k]
            for key, v in s.items():
                t[key] = max(t[key], v) if key == "max_vertices" else t[key] + v
        for k, w in res.png.items():
            png_wkb[k].extend(w)
        if layout == "levels":
            for k, (cols, wkb) in res.levels.items():
                writer.add(schema.levels_layer(k), cols, wkb)
        elif layout == "single":
            cols, wkb = res.single
            cols = {"UID": list(range(uid + 1, uid + 1 + len(wkb))), **cols}
            uid += len(wkb)
            writer.add(schema.SINGLE_LAYER, cols, wkb)
        else:
            path = out / schema.COUNTRY_FILE.format(iso=res.gid)
            cw = GpkgWriter(path, {schema.country_layer(k): level_columns(k)
                                   for k in range(res.depth + 1)})
            for k, (cols, wkb) in res.levels.items():
                cw.add(schema.country_layer(k), cols, wkb)
            files.append(cw.close())
    if writer is not None:
        files.append(writer.close())
    if zip:
        zips = []
        for f in files:
            if layout == "levels":
                dest = out / "gadm_410-levels.zip"
            elif layout == "single":
                dest = out / "gadm_410-gpkg.zip"
            else:
                dest = out / (f.name + ".zip")
            zips.append(zip_file(f, dest))
        files += zips
    if png is not None:
        from .render import render_png
        files.append(render_png(png_wkb, Path(png)))
    levels = {}
    for k in LEVELS:
        t = totals[k]
        levels[str(k)] = {
            "features": t["features"],
            "mean_vertices": round(t["vertices"] / t["features"], 1) if t["features"] else 0,
            "max_vertices": t["max_vertices"], "bytes": t["bytes"],
            "polygon_rows": t["polygon_rows"],
            "invalid_geometries": t["invalid_geometries"],
            "na_strings": t["na_strings"], "null_values": t["null_values"],
        }
    stats = {"scale": scale, "seed": seed, "layout": layout,
             "dirt": asdict(dirt), "levels": levels,
             "files": [str(f) for f in files],
             "seconds": round(time.perf_counter() - t0, 2)}
    (out / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False))
    return stats
