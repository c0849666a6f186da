"""Stable row keys derived from GADM GIDs.

`id` is a 63-bit hash of (level, GID), so the same unit keeps the same id in
every refresh, and a child's `parent_id` is the hash of its parent's GID:
every level computes its keys alone, in parallel, with no lookup of the parent
level. Linking then only has to null the few orphans and add the FOREIGN KEY.
A GID seen again within a level (GADM has a few duplicates) gets the id of
(level, GID, occurrence), so both rows are kept with distinct ids.
"""

from __future__ import annotations

from collections import Counter
from hashlib import blake2b

import numpy as np

_MASK = (1 << 63) - 1


def _hash(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "little") & _MASK


def unit_id(level: int, gid: str) -> int:
    """The id of the first (usually only) unit with `gid` at `level`."""
    return _hash(f"{level}:{gid}")


class IdAssigner:
    """Assigns ids to one level's rows in source order, remembering duplicates."""

    def __init__(self, level: int):
        self.level = level
        self.seen: Counter[str] = Counter()

    def ids(self, gids: list[str | None], fids: list[int]) -> np.ndarray:
        out = np.empty(len(gids), dtype=np.int64)
        for i, (gid, fid) in enumerate(zip(gids, fids)):
            if gid is None:
                out[i] = _hash(f"{self.level}:<no gid>:fid={fid}")
                continue
            k = self.seen[gid]
            self.seen[gid] = k + 1
            out[i] = unit_id(self.level, gid) if k == 0 else _hash(f"{self.level}:{gid}#{k}")
        return out

    def duplicates(self) -> dict[str, int]:
        """GIDs seen more than once, with their counts."""
        return {g: c for g, c in self.seen.items() if c > 1}


def parent_ids(level: int, parent_gids: list[str | None]) -> list[int | None]:
    """`parent_id` for rows of `level` (>= 1) from their GID_{level-1}."""
    return [None if g is None else unit_id(level - 1, g) for g in parent_gids]
