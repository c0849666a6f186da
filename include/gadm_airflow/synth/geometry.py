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
         spacing: float, *, sigma: float = 0.28, beta: float = 1.35,
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


def sample_points(parents: np.ndarray, m: np.ndarray, rng: np.random.Generator,
                  clear: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`m[j]` uniform random points inside each (prepared) parent j, at
    least `clear[j]` from its boundary where possible.

    Returns (xy, parent index), grouped by parent in order.
    """
    if clear is not None:
        edges = shapely.boundary(parents)
        shapely.prepare(edges)
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
        if clear is not None and _ < 20:  # give up the margin if it never fits
            cand = np.flatnonzero(ok)
            near = shapely.dwithin(edges[pid[cand]], shapely.points(x[cand], y[cand]),
                                   clear[pid[cand]])
            ok[cand[near]] = False
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
    """Index (into `bxy`) of the nearest boundary vertex of the same parent.

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
    return cand[idx[first]]


def _merge_faces(faces: np.ndarray):
    """Union of adjacent faces of one child that keeps every vertex of the
    remaining boundary (GEOS's unions may drop some, which would break the
    exact match with the neighbours)."""
    if not shapely.intersects(faces[:, None], faces[None, :])[np.triu_indices(len(faces), 1)].any():
        return shapely.multipolygons(shapely.get_parts(faces))
    rings = shapely.get_rings(faces)
    xy, idx = shapely.get_coordinates(rings, return_index=True)
    same = idx[1:] == idx[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    key = np.where((a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1])),
                   0, 1)
    lo = np.where(key[:, None] == 0, a, b)
    hi = np.where(key[:, None] == 0, b, a)
    seg = np.column_stack([lo, hi])
    _, inv, cnt = np.unique(seg, axis=0, return_inverse=True, return_counts=True)
    outer = cnt[inv.ravel()] == 1
    segs = shapely.linestrings(np.stack([a[outer], b[outer]], axis=1))
    merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(segs)))
    polys = shapely.get_parts(shapely.polygonize(merged))
    inside = shapely.contains_xy(shapely.multipolygons(shapely.get_parts(faces)),
                                 *shapely.get_coordinates(shapely.point_on_surface(polys)).T)
    return shapely.multipolygons(polys[inside])


def _split_face(face, rng: np.random.Generator):
    """`_split_chord`, or for a face too simple for that (a triangle) the
    same after adding midpoints to its outer ring (the one case where a
    neighbour misses a vertex)."""
    for _ in range(4):
        cut = _split_chord(face, rng)
        if cut is not None:
            return cut
        ring = shapely.get_coordinates(shapely.get_exterior_ring(face))
        mid = (ring[:-1] + ring[1:]) / 2
        dense = np.empty((2 * len(mid) + 1, 2))
        dense[0:-1:2], dense[1::2], dense[-1] = ring[:-1], mid, ring[0]
        face = shapely.Polygon(dense, [shapely.get_coordinates(r) for r in face.interiors])
    return None


def _split_chord(face, rng: np.random.Generator):
    """Cut `face` in two along a chord between two of its outer vertices that
    runs inside it (no new vertices anywhere). Returns (pieces, chord), or
    None if no such chord was found."""
    ring = shapely.get_coordinates(shapely.get_exterior_ring(face))[:-1]
    n = len(ring)
    # Pairs about half the ring apart first (cuts through the middle).
    start = rng.integers(0, n, 60)
    pairs = [(int(i), int((i + n // 2 + d) % n)) for i, d in
             zip(start, rng.integers(-n // 6 - 1, n // 6 + 1, 60))]
    pairs += [tuple(int(v) for v in rng.integers(0, n, 2)) for _ in range(200)]
    size = np.sqrt(shapely.area(face))
    for t, (i, k) in enumerate(pairs):
        if abs(i - k) < 2 or abs(i - k) > n - 2:
            continue
        # bent and as detailed as the other borders (straight as a last try)
        chord = _noisy_edges(ring[[i]], ring[[k]], np.array([size / 60]),
                             0.06 if t < 200 else 0.0, rng)[0]
        if shapely.relate_pattern(chord, face, "1FFF0F***"):
            lines = np.append(shapely.get_parts(shapely.boundary(face)), chord)
            pieces = shapely.get_parts(shapely.polygonize(shapely.get_parts(
                shapely.node(shapely.multilinestrings(lines)))))
            keep = shapely.contains_xy(face, *shapely.get_coordinates(
                shapely.point_on_surface(pieces)).T)
            pieces = pieces[keep]
            if len(pieces) == 2:
                return pieces, chord
    return None


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
              *, vertices_per_edge: float, amp: float = 0.09, linework=None):
    """Split parent j into `counts[j]` children that tile it exactly.

    `linework` holds the boundaries of all `parents` as lines without
    duplicates (the linework returned for the previous level); by default
    the parents' own boundaries (right only if they share no border).

    Returns (children, linework): an object array of child geometries
    (Polygon or MultiPolygon) grouped by parent in order (counts[j]
    consecutive children for parent j), and the children's linework.
    """
    parents = np.asarray(parents, dtype=object)
    counts = np.asarray(counts, dtype=np.int64)
    out = np.empty(int(counts.sum()), dtype=object)
    first_child = np.cumsum(counts) - counts
    one = np.flatnonzero(counts == 1)
    out[first_child[one]] = parents[one]
    multi = np.flatnonzero(counts >= 2)
    if multi.size == 0:
        if linework is None:
            linework = shapely.get_parts(shapely.boundary(parents))
        return out, linework
    P = parents[multi]
    m = counts[multi]
    shapely.prepare(P)
    seeds, spid = sample_points(P, m, rng, clear=0.1 * np.sqrt(shapely.area(P) / m))
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
    area = shapely.area(P)
    size = np.sqrt(area / m)  # typical child diameter, per parent
    cplx = np.array([1, 1j])

    def snap(end, pid, known):
        """Move points not in `known` (sorted complex keys) onto the nearest
        boundary vertex of their parent (in place)."""
        k = end @ cplx
        pos = np.clip(np.searchsorted(known, k), 0, known.size - 1)
        cross = np.flatnonzero(known[pos] != k)
        if cross.size:
            v = bxy[_snap_to_vertices(end[cross], pid[cross], bxy, bpid, bseg)]
            # only points on the boundary (not where two bent borders cross)
            on = np.hypot(*(v - end[cross]).T) <= 0.5 * bseg[pid[cross]] + 1e-12
            end[cross[on]] = v[on]

    snap(a, sp, vkeys)
    snap(z, sp, vkeys)
    keep = (a != z).any(axis=1)
    a, z, sp = a[keep], z[keep], sp[keep]

    # 3. Densify and bend; spacing is a fraction of the children's size.
    # Bends that leave the parent are cut off at its boundary and the new
    # ends snapped onto boundary vertices too, so that (nearly always) no
    # new vertex appears on a parent's boundary: children keep exactly the
    # parent's vertices there.
    spacing = size / vertices_per_edge
    lines = _noisy_edges(a, z, spacing[sp], amp, rng)
    for _clip in range(1 if len(lines) else 0):  # (more rounds made it worse)
        known = np.unique(np.concatenate([shapely.get_coordinates(lines) @ cplx, bxy @ cplx]))
        have, grp = np.unique(sp, return_inverse=True)
        ml = shapely.multilinestrings(lines, indices=grp)
        inner = shapely.intersection(ml, P[have])
        lparts, lpid = shapely.get_parts(inner, return_index=True)
        lpid = have[lpid]
        is_line = shapely.get_type_id(lparts) == 1
        lparts, lpid = lparts[is_line], lpid[is_line]
        lxy, lidx = shapely.get_coordinates(lparts, return_index=True)
        if len(lparts) == 0:
            lines, sp = lparts, lpid
            break
        starts = np.searchsorted(lidx, np.arange(len(lparts)))
        ends = np.r_[starts[1:], len(lidx)] - 1
        sa, sz = lxy[starts], lxy[ends]
        snap(sa, lpid, known)
        snap(sz, lpid, known)
        moved = (sa != lxy[starts]).any(axis=1) | (sz != lxy[ends]).any(axis=1)
        lxy[starts], lxy[ends] = sa, sz
        ok = (sa != sz).any(axis=1) | (ends - starts > 1)
        lines = shapely.linestrings(lxy, indices=lidx)[ok]
        sp = lpid[ok]
        if not moved.any():
            break

    # 4. Node the edges with the (duplicate-free) linework of the parents'
    # boundaries and polygonize: shared borders exist once, so neighbours
    # get the same vertices. Label faces with the nearest seed of their
    # parent. A parent left with fewer faces than children (bends or snaps
    # swallowed a cell) gets a chord across its largest face; then again.
    if linework is None:
        linework = bparts
    nchild = len(seeds)
    sx, sy = _shift(spid)
    stree = shapely.STRtree(shapely.points(seeds[:, 0] + sx, seeds[:, 1] + sy))
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(
        np.concatenate([linework, lines]))))
    faces = shapely.get_parts(shapely.polygonize(noded))
    rep = shapely.point_on_surface(faces)
    pj, fi = shapely.STRtree(rep).query(P, predicate="contains")
    fpar = np.full(len(faces), -1, dtype=np.int64)
    fpar[fi] = pj
    inside = np.flatnonzero(fpar >= 0)
    faces, rep, fpar = faces[inside], rep[inside], fpar[inside]
    nf = np.bincount(fpar, minlength=len(P))
    short = np.flatnonzero(nf < m)
    if short.size:
        extra_f, extra_p, chords = [], [], []
        drop = np.zeros(len(faces), dtype=bool)
        for j in short:
            mine = list(faces[fpar == j])
            drop |= fpar == j
            while len(mine) < m[j]:
                for big in np.argsort(-shapely.area(mine), kind="stable"):
                    cut = _split_face(mine[big], rng)
                    if cut is not None:
                        break
                else:
                    raise RuntimeError(f"partition: cannot make {m[j]} children "
                                       f"in parent {int(multi[j])}")
                mine[big:big + 1] = list(cut[0])
                chords.append(cut[1])
            extra_f += mine
            extra_p += [j] * len(mine)
        faces = np.concatenate([faces[~drop], np.array(extra_f, dtype=object)])
        fpar = np.concatenate([fpar[~drop], np.array(extra_p, dtype=np.int64)])
        rep = shapely.point_on_surface(faces)
        noded = np.concatenate([noded, np.array(chords, dtype=object)])
    rxy = shapely.get_coordinates(rep)
    fx, fy = _shift(fpar)
    qi, si = stree.query_nearest(shapely.points(rxy[:, 0] + fx, rxy[:, 1] + fy))
    _, first = np.unique(qi, return_index=True)
    face_seed = si[first]  # global seed index == child index within `multi`

    # A child whose region got no face takes the face containing its seed,
    # or else any face of its parent whose owner has several.
    nfaces = np.bincount(face_seed, minlength=nchild)
    for c in np.flatnonzero(nfaces == 0):
        j = spid[c]
        cand = np.flatnonzero(fpar == j)
        hit = cand[shapely.contains_xy(faces[cand], seeds[c, 0], seeds[c, 1])]
        pool = np.concatenate([hit, cand[np.argsort(-shapely.area(faces[cand]), kind="stable")]])
        for f in pool:
            if nfaces[face_seed[f]] > 1:
                nfaces[face_seed[f]] -= 1
                face_seed[f] = c
                nfaces[c] = 1
                break
        else:  # cannot happen: the parent has at least as many faces
            raise RuntimeError(f"partition: child {c} of parent {int(multi[j])} is empty")

    order = np.argsort(face_seed, kind="stable")
    fs = face_seed[order]
    fsorted = faces[order]
    gstart = np.searchsorted(fs, np.arange(nchild))
    gend = np.searchsorted(fs, np.arange(nchild), side="right")
    geoms = np.empty(nchild, dtype=object)
    single = gend - gstart == 1
    geoms[single] = fsorted[gstart[single]]
    for c in np.flatnonzero(gend - gstart > 1):
        geoms[c] = _merge_faces(fsorted[gstart[c]:gend[c]])
    child_pos = first_child[multi][spid] + (np.arange(nchild) - seed_start[spid])
    out[child_pos] = geoms
    return out, noded


def to_multi(geoms: np.ndarray) -> np.ndarray:
    """Every (Multi)Polygon as a MultiPolygon (vectorised)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    return shapely.multipolygons(parts, indices=idx)
