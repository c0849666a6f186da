"""Geometry of the synthetic world: fractal landmasses and exact partitions.

Two building blocks, both vectorised with Shapely 2 / numpy:

* :func:`blob` – a star-shaped polygon whose radius is fractal (1/f^beta)
  noise sampled at a fixed spacing: coastlines, islands and lakes.
* :func:`partition` – split each parent polygon into exactly ``m`` children
  that tile it: Voronoi edges of random seeds, clipped to the parent, their
  ends snapped onto existing boundary vertices, densified and bent by a
  Brownian bridge (so inland borders wiggle), then noded together with the
  parents' boundaries and polygonized. Every face is labelled with the nearest
  seed of its parent and faces of one child are merged by coverage union.
  Neighbours therefore share boundary vertices bit for bit, and the children
  inherit the parent's (dense) coastline, islands and holes.
"""

from __future__ import annotations

import numpy as np
import shapely

# Offsets used to make a nearest-neighbour search stay inside one parent:
# parent j is translated by (j % _COLS * _DX, j // _COLS * _DY).
_COLS = 1024
_DX = 720.0
_DY = 360.0


def _shift(j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (j % _COLS) * _DX, (j // _COLS) * _DY


def blob(rng: np.random.Generator, cx: float, cy: float, radius: float,
         spacing: float, *, sigma: float = 0.28, beta: float = 1.55,
         aspect: float = 1.0, max_vertices: int = 1_500_000) -> shapely.Polygon:
    """A simple (star-shaped) polygon of about `radius` with a fractal outline.

    The outline has one vertex every `spacing` degrees (approximately), so the
    vertex count grows with the perimeter as real coastlines do.
    """
    n = int(np.clip(2 * np.pi * radius * 1.4 / spacing, 24, max_vertices))
    nf = n // 2 + 1
    f = np.arange(nf, dtype=float)
    amp = np.zeros(nf)
    amp[1:] = f[1:] ** -beta
    spec = amp * (rng.standard_normal(nf) + 1j * rng.standard_normal(nf))
    noise = np.fft.irfft(spec, n)
    noise *= sigma / noise.std()
    theta = 2 * np.pi * np.arange(n) / n + rng.uniform(0, 2 * np.pi)
    r = radius * np.exp(noise - sigma * sigma / 2)
    x = cx + r * np.cos(theta) * aspect
    y = cy + r * np.sin(theta) / aspect
    ring = np.column_stack([np.append(x, x[0]), np.append(y, y[0])])
    return shapely.polygons(ring)


def sample_points(parents: np.ndarray, m: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`m[j]` uniform random points inside each (prepared) parent j.

    Returns (xy, parent index), grouped by parent in order.
    """
    b = shapely.bounds(parents)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    ratio = np.clip(w * h / np.maximum(shapely.area(parents), 1e-300), 1, 1e4)
    got_pid, got_xy = [], []
    have = np.zeros(len(parents), dtype=np.int64)
    for _ in range(200):
        need = m - have
        if not (need > 0).any():
            break
        k = np.where(need > 0, np.ceil(need * ratio * 1.5).astype(np.int64) + 4, 0)
        pid = np.repeat(np.arange(len(parents)), k)
        x = b[pid, 0] + rng.random(pid.size) * w[pid]
        y = b[pid, 1] + rng.random(pid.size) * h[pid]
        ok = shapely.contains_xy(parents[pid], x, y)
        got_pid.append(pid[ok])
        got_xy.append(np.column_stack([x[ok], y[ok]]))
        have += np.bincount(pid[ok], minlength=len(parents))
    else:
        raise RuntimeError("could not place seed points inside some parents")
    pid = np.concatenate(got_pid)
    xy = np.concatenate(got_xy)
    order = np.argsort(pid, kind="stable")
    pid, xy = pid[order], xy[order]
    start = np.searchsorted(pid, np.arange(len(parents)))
    rank = np.arange(pid.size) - start[pid]
    keep = rank < m[pid]
    return xy[keep], pid[keep]


def _snap_to_vertices(pts: np.ndarray, pid: np.ndarray, bxy: np.ndarray,
                      bpid: np.ndarray, bseg: np.ndarray) -> np.ndarray:
    """Nearest boundary vertex (of the same parent) for each point in `pts`.

    `bxy`/`bpid` are the boundary vertices and their parent; `bseg[j]` is the
    longest boundary segment of parent j, an upper bound on the distance from
    a point lying on the boundary to its nearest vertex (times two).
    """
    key = bxy[:, 0] + bpid * _DX  # parents side by side along x
    order = np.argsort(key, kind="stable")
    skey = key[order]
    pkey = pts[:, 0] + pid * _DX
    d = bseg[pid] * 0.5 + 1e-6
    lo = np.searchsorted(skey, pkey - d, side="left")
    hi = np.searchsorted(skey, pkey + d, side="right")
    n = hi - lo
    if (n <= 0).any():  # cannot happen for points on the boundary; be safe
        bad = n <= 0
        lo[bad] = np.clip(np.searchsorted(skey, pkey[bad]) - 1, 0, skey.size - 1)
        hi[bad] = lo[bad] + 1
        n = hi - lo
    q = np.repeat(np.arange(len(pts)), n)
    cand = order[np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)]
    same = bpid[cand] == pid[q]
    dist = np.hypot(bxy[cand, 0] - pts[q, 0], bxy[cand, 1] - pts[q, 1])
    dist[~same] = np.inf
    starts = np.cumsum(n) - n
    best = np.minimum.reduceat(dist, starts)
    # first candidate reaching the minimum, per point
    is_best = dist == best[q]
    idx = np.flatnonzero(is_best)
    first = np.unique(q[idx], return_index=True)[1]
    return bxy[cand[idx[first]]]


def _noisy_edges(a: np.ndarray, b: np.ndarray, spacing: np.ndarray,
                 amp: float, rng: np.random.Generator) -> np.ndarray:
    """Densify segments a->b and bend them with a Brownian bridge.

    Returns linestrings; the end points are kept bit for bit.
    """
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    nseg = np.clip(np.ceil(length / spacing), 1, 20_000).astype(np.int64)
    npts = nseg + 1
    start = np.cumsum(npts) - npts
    idx = np.repeat(np.arange(len(a)), npts)
    i = np.arange(idx.size) - start[idx]
    t = i / nseg[idx]
    inc = rng.standard_normal(idx.size)
    inc[start] = 0.0
    w = np.cumsum(inc)
    w -= np.repeat(w[start], npts)
    w_end = w[start + nseg]
    bridge = w - t * w_end[idx]
    disp = amp * length[idx] * bridge / np.sqrt(nseg[idx])
    nx = -d[:, 1] / np.maximum(length, 1e-300)
    ny = d[:, 0] / np.maximum(length, 1e-300)
    xy = a[idx] + d[idx] * t[:, None]
    xy[:, 0] += nx[idx] * disp
    xy[:, 1] += ny[idx] * disp
    xy[start] = a
    xy[start + nseg] = b
    return shapely.linestrings(xy, indices=idx)


def partition(parents: np.ndarray, counts: np.ndarray, rng: np.random.Generator,
              *, vertices_per_edge: float, amp: float = 0.09):
    """Split parent j into `counts[j]` children that tile it exactly.

    Returns an object array of child geometries (Polygon or MultiPolygon),
    grouped by parent in order (counts[j] consecutive children for parent j).
    """
    parents = np.asarray(parents, dtype=object)
    counts = np.asarray(counts, dtype=np.int64)
    out = np.empty(int(counts.sum()), dtype=object)
    first_child = np.cumsum(counts) - counts
    one = np.flatnonzero(counts == 1)
    out[first_child[one]] = parents[one]
    multi = np.flatnonzero(counts >= 2)
    if multi.size == 0:
        return out
    P = parents[multi]
    m = counts[multi]
    shapely.prepare(P)
    seeds, spid = sample_points(P, m, rng)
    seed_start = np.cumsum(m) - m

    # 1. Voronoi edges of each parent's seeds, clipped to the parent.
    b = shapely.bounds(P)
    pad = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])[:, None] * 0.2 + 1e-3
    frame = shapely.box(b[:, 0] - pad[:, 0], b[:, 1] - pad[:, 0],
                        b[:, 2] + pad[:, 0], b[:, 3] + pad[:, 0])
    mp = shapely.multipoints(shapely.points(seeds), indices=spid)
    vedges = shapely.voronoi_polygons(mp, extend_to=frame, only_edges=True)
    vxy = shapely.get_coordinates(vedges)
    vkeys = np.unique(vxy[:, 0] + 1j * vxy[:, 1])
    clipped = shapely.intersection(vedges, P)
    pieces, ppid = shapely.get_parts(clipped, return_index=True)
    pieces_lines = shapely.get_type_id(pieces) == 1
    pieces, ppid = pieces[pieces_lines], ppid[pieces_lines]
    cxy, cidx = shapely.get_coordinates(pieces, return_index=True)
    same = cidx[1:] == cidx[:-1]
    a = cxy[:-1][same].copy()
    z = cxy[1:][same].copy()
    sp = ppid[cidx[:-1][same]]

    # 2. Move the ends that lie on the parent boundary onto its vertices.
    bnd = shapely.boundary(P)
    bparts, bppid = shapely.get_parts(bnd, return_index=True)
    bxy, bpart_idx = shapely.get_coordinates(bparts, return_index=True)
    bpid = bppid[bpart_idx]
    seglen = np.hypot(*np.diff(bxy, axis=0).T)
    seg_ok = bpart_idx[1:] == bpart_idx[:-1]
    bseg = np.zeros(len(P))
    np.maximum.at(bseg, bppid[bpart_idx[1:][seg_ok]], seglen[seg_ok])
    for end in (a, z):
        k = end[:, 0] + 1j * end[:, 1]
        pos = np.clip(np.searchsorted(vkeys, k), 0, vkeys.size - 1)
        cross = vkeys[pos] != k
        if cross.any():
            end[cross] = _snap_to_vertices(end[cross], sp[cross], bxy, bpid, bseg)
    keep = (a != z).any(axis=1)
    a, z, sp = a[keep], z[keep], sp[keep]

    # 3. Densify and bend; spacing is a fraction of the children's size.
    area = shapely.area(P)
    spacing = np.sqrt(area / m) / vertices_per_edge
    lines = _noisy_edges(a, z, spacing[sp], amp, rng)

    # 4. Node with the parents' boundaries, polygonize, label, merge.
    linework = np.concatenate([lines, bparts])
    noded = shapely.union_all(linework)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    rep = shapely.point_on_surface(faces)
    tree = shapely.STRtree(rep)
    pj, fi = tree.query(P, predicate="contains")
    face_parent = np.full(len(faces), -1, dtype=np.int64)
    face_parent[fi] = pj
    inside = np.flatnonzero(face_parent >= 0)
    faces, rep, fpar = faces[inside], rep[inside], face_parent[inside]
    rxy = shapely.get_coordinates(rep)
    sx, sy = _shift(spid)
    stree = shapely.STRtree(shapely.points(seeds[:, 0] + sx, seeds[:, 1] + sy))
    fx, fy = _shift(fpar)
    qi, si = stree.query_nearest(shapely.points(rxy[:, 0] + fx, rxy[:, 1] + fy))
    _, first = np.unique(qi, return_index=True)
    face_seed = si[first]  # global seed index == child index within `multi`

    # A child whose region got no face (noise pushed a border over its
    # seed): give it the face that contains its seed.
    nchild = len(seeds)
    nfaces = np.bincount(face_seed, minlength=nchild)
    empty = np.flatnonzero(nfaces == 0)
    if empty.size:
        ftree = shapely.STRtree(faces)
        si2, fi2 = ftree.query(shapely.points(seeds[empty]), predicate="within")
        for s, f in zip(empty[si2], fi2):
            donor = face_seed[f]
            if nfaces[donor] > 1:
                face_seed[f] = s
                nfaces[donor] -= 1
                nfaces[s] += 1
        if (nfaces == 0).any():
            raise RuntimeError("partition left a child without area")

    order = np.argsort(face_seed, kind="stable")
    fs = face_seed[order]
    fsorted = faces[order]
    gstart = np.searchsorted(fs, np.arange(nchild))
    gend = np.searchsorted(fs, np.arange(nchild), side="right")
    geoms = np.empty(nchild, dtype=object)
    single = gend - gstart == 1
    geoms[single] = fsorted[gstart[single]]
    for c in np.flatnonzero(~single):
        geoms[c] = shapely.coverage_union_all(fsorted[gstart[c]:gend[c]])
    child_pos = first_child[multi][spid] + (np.arange(nchild) - seed_start[spid])
    out[child_pos] = geoms
    return out


def to_multi(geoms: np.ndarray) -> np.ndarray:
    """Every (Multi)Polygon as a MultiPolygon (vectorised)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    return shapely.multipolygons(parts, indices=idx)
