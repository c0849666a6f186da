"""One settings object, read from the environment, used by every component.

Set in `bin/env.sh` for local use and in `docker-compose.yaml` for containers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name) or default).resolve()


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    work_dir: Path
    report_dir: Path
    cache_dir: Path
    allowed_roots: tuple[Path, ...]
    default_source: str
    default_batch_rows: int
    http_timeout_seconds: float
    staging_ttl_seconds: float

    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = _path("GADM_DATA_DIR", _REPO_ROOT / "data")
        cache_dir = _path("GADM_CACHE_DIR", _REPO_ROOT / "var" / "cache")
        roots = os.environ.get("GADM_ALLOWED_ROOTS")
        allowed = (
            tuple(Path(p).resolve() for p in roots.split(os.pathsep) if p)
            if roots
            else (data_dir, cache_dir)
        )
        return cls(
            data_dir=data_dir,
            work_dir=_path("GADM_WORK_DIR", _REPO_ROOT / "var" / "work"),
            report_dir=_path("GADM_REPORT_DIR", _REPO_ROOT / "var" / "reports"),
            cache_dir=cache_dir,
            allowed_roots=allowed,
            default_source=os.environ.get(
                "GADM_DEFAULT_SOURCE", str(data_dir / "sample" / "gadm_410-levels.gpkg")
            ),
            default_batch_rows=int(os.environ.get("GADM_BATCH_ROWS", "2000")),
            http_timeout_seconds=float(os.environ.get("GADM_HTTP_TIMEOUT", "60")),
            staging_ttl_seconds=float(os.environ.get("GADM_STAGING_TTL_SECONDS", "3600")),
        )
