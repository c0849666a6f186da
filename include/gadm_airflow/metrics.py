"""The one timing/memory helper every stage uses for its benchmark XComs."""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss is KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class PhaseTimer:
    """Accumulates wall seconds per named phase: ``with timer.phase("read"): ...``."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


class Progress:
    """Logs rows done / total, rows/s and ETA at most every `every` seconds."""

    def __init__(self, log, label: str, total: int | None, every: float = 10.0):
        self._log, self._label, self._total, self._every = log, label, total, every
        self._start = self._last = time.perf_counter()
        self.done = 0

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if now - self._last < self._every:
            return
        self._last = now
        rate = self.done / max(now - self._start, 1e-9)
        if self._total:
            eta = max(self._total - self.done, 0) / max(rate, 1e-9)
            self._log.info("%s: %d / %d rows (%.0f rows/s, ETA %.0f s)",
                           self._label, self.done, self._total, rate, eta)
        else:
            self._log.info("%s: %d rows (%.0f rows/s)", self._label, self.done, rate)
