"""Resolve the `source` param into local, GDAL-readable dataset paths.

A source is a GeoPackage or shapefile, a .zip of them (opened in place through
GDAL's /vsizip/), a folder of per-country files, or an http(s) URL of any of
those, downloaded into the cache with resume. Local sources must lie inside
the allowed roots (symlinks resolved). Every source gets an identity (size,
mtime, sha256; ETag/Last-Modified for URLs) so unchanged sources are not
fetched or processed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import SourceError
from .settings import Settings

log = logging.getLogger(__name__)

DATASET_SUFFIXES = (".gpkg", ".shp")
_CHUNK = 8 << 20


@dataclass(frozen=True)
class ResolvedSource:
    source: str               # what the user asked for
    local_path: str           # the file or folder on disk
    dataset_paths: tuple[str, ...]  # GDAL paths, possibly /vsizip/...
    identity: dict            # kind, size, mtime, sha256 (+ etag, last_modified)

    def to_dict(self) -> dict:
        return asdict(self)


def resolve(source: str, settings: Settings) -> ResolvedSource:
    """Find (or download) `source` and list the GADM datasets it contains."""
    if not source or not str(source).strip():
        raise SourceError("param 'source' is empty")
    scheme = urlparse(source).scheme.lower()
    if scheme in ("http", "https"):
        from .download import fetch  # requests is only needed for URLs

        path, identity = fetch(source, settings)
    elif scheme in ("", "file"):
        path = _allowed_local_path(urlparse(source).path if scheme == "file" else source, settings)
        identity = file_identity(path, settings)
    else:
        raise SourceError(f"source {source!r}: unsupported scheme {scheme!r} (use a path or http(s) URL)")
    datasets = _dataset_paths(path)
    if not datasets:
        raise SourceError(f"source {source!r}: no GeoPackage or shapefile found in {path}")
    return ResolvedSource(source, str(path), tuple(datasets), identity)


def _allowed_local_path(raw: str, settings: Settings) -> Path:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = settings.data_dir / path
    real = path.resolve()
    if not any(real == root or root in real.parents for root in settings.allowed_roots):
        roots = ", ".join(str(r) for r in settings.allowed_roots)
        raise SourceError(
            f"source {raw!r} resolves to {real}, outside the allowed roots ({roots}); "
            "set GADM_ALLOWED_ROOTS to allow it"
        )
    if not real.exists():
        raise SourceError(f"source {raw!r}: no such file or directory ({real})")
    return real


def _dataset_paths(path: Path) -> list[str]:
    if path.is_dir():
        out: list[str] = []
        for child in sorted(path.iterdir()):
            if child.suffix.lower() in DATASET_SUFFIXES or child.suffix.lower() == ".zip":
                out += _dataset_paths(child)
        return out
    suffix = path.suffix.lower()
    if suffix in DATASET_SUFFIXES:
        return [str(path)]
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                members = sorted(n for n in zf.namelist() if n.lower().endswith(DATASET_SUFFIXES))
        except zipfile.BadZipFile as exc:
            raise SourceError(f"source {path}: not a readable zip file ({exc})") from exc
        if not members:
            raise SourceError(f"source {path}: the zip holds no GeoPackage or shapefile")
        return [f"/vsizip/{path}/{m}" for m in members]
    raise SourceError(f"source {path}: expected .gpkg, .shp, .zip or a folder, got {path.name!r}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_identity(path: Path, settings: Settings) -> dict:
    """Size, mtime and sha256 of a file or folder; checksums cached by (path, size, mtime)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    cache_file = settings.cache_dir / "checksums.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    total = hashlib.sha256()
    size = 0
    mtime = 0.0
    for f in files:
        st = f.stat()
        key = f"{f}|{st.st_size}|{st.st_mtime_ns}"
        digest = cache.get(key) or sha256_file(f)
        cache[key] = digest
        total.update(f"{f.relative_to(path) if path.is_dir() else f.name}:{digest}\n".encode())
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache))
    tmp.replace(cache_file)
    return {"kind": "file", "path": str(path), "size": size, "mtime": mtime,
            "sha256": total.hexdigest() if path.is_dir() else cache[key]}
