"""How many units each level has and which parent each one belongs to.

The plan is made once for the whole world, before any geometry below level 0
exists, so the totals per level match GADM 4.1 exactly at any scale:
``round(GADM41_COUNTS[n] * scale)``, at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gadm_airflow.schema import GADM41_COUNTS, LEVELS

# Share of countries whose deepest level is 0..5 (GADM: most stop at 2 or 3).
DEPTH_SHARE = np.array([0.04, 0.17, 0.34, 0.33, 0.09, 0.03])


def level_counts(scale: float) -> dict[int, int]:
    """Features per level at `scale` (minimum 1, so every level exists)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return {n: max(1, round(GADM41_COUNTS[n] * scale)) for n in LEVELS}


@dataclass
class Plan:
    """Hierarchy of the world.

    ``children[k][j]`` is the number of level-k units under level-(k-1) unit j
    (units of a level are numbered country by country, parent by parent).
    ``country[k][j]`` is the country (0..n0-1) of level-k unit j.
    """

    counts: dict[int, int]
    depth: np.ndarray
    children: dict[int, np.ndarray]
    country: dict[int, np.ndarray]

    def slice_for(self, c: int) -> list[np.ndarray]:
        """Child counts of country `c`, for levels 1..5, in unit order."""
        out = []
        for k in LEVELS[1:]:
            units = np.flatnonzero(self.country[k - 1] == c)
            out.append(self.children[k][units] if units.size else
                       np.zeros(0, dtype=np.int64))
        return out


def _distribute(total: int, weights: np.ndarray, must: int | None,
                rng: np.random.Generator) -> np.ndarray:
    """Split `total` among len(weights) parents, each >= 1 if possible.

    If there are fewer units than parents, a weighted subset gets one each;
    parent `must` (when given) is always in that subset.
    """
    e = len(weights)
    p = weights / weights.sum()
    out = np.zeros(e, dtype=np.int64)
    if total >= e:
        out += 1
        out += rng.multinomial(total - e, p)
        return out
    chosen = rng.choice(e, size=total, replace=False, p=p)
    if must is not None and must not in chosen:
        chosen[0] = must
    out[chosen] = 1
    return out


def plan(counts: dict[int, int], country_weight: np.ndarray, deep: int,
         rng: np.random.Generator) -> Plan:
    """Plan the hierarchy; country `deep` reaches level 5."""
    n0 = counts[0]
    depth = rng.choice(6, size=n0, p=DEPTH_SHARE)
    depth[deep] = 5
    children: dict[int, np.ndarray] = {}
    country: dict[int, np.ndarray] = {0: np.arange(n0)}
    weight_prev = np.asarray(country_weight, dtype=float)
    for k in LEVELS[1:]:
        par_country = country[k - 1]
        eligible = np.flatnonzero(depth[par_country] >= k)
        if eligible.size == 0:  # only if the deep country lost its line
            eligible = np.arange(par_country.size)
        # Spread each level over its countries: a country's units share
        # its weight, so no single country takes most of the fine levels.
        per_country = np.bincount(par_country[eligible], minlength=n0)
        w = (weight_prev[eligible] * rng.lognormal(0.0, 0.7, eligible.size)
             / per_country[par_country[eligible]] ** 0.7)
        deep_units = np.flatnonzero(par_country[eligible] == deep)
        must = int(deep_units[0]) if deep_units.size else None
        sub = _distribute(counts[k], w, must, rng)
        m = np.zeros(par_country.size, dtype=np.int64)
        m[eligible] = sub
        children[k] = m
        country[k] = np.repeat(par_country, m)
        weight_prev = np.ones(country[k].size)
    return Plan(counts=counts, depth=depth, children=children, country=country)
