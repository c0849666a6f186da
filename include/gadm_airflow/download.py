"""Download an http(s) source into the cache, resumable and conditional.

A manifest beside each download records ETag, Last-Modified, size and sha256.
An unchanged remote (304, or same ETag/size) is not fetched again; an
interrupted download resumes from its `.part` file with a Range request.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from urllib.parse import urlparse

import requests

from .errors import SourceError, SourceUnavailable
from .settings import Settings
from .source import sha256_file

log = logging.getLogger(__name__)


def _cache_paths(url: str, settings: Settings) -> tuple[Path, Path]:
    name = Path(urlparse(url).path).name or "source"
    folder = settings.cache_dir / "downloads" / hashlib.sha1(url.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name, folder / "manifest.json"


def fetch(url: str, settings: Settings) -> tuple[Path, dict]:
    """Return the cached file for `url` and its identity, downloading if needed."""
    target, manifest_path = _cache_paths(url, settings)
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    headers = {}
    if target.exists() and manifest:
        if manifest.get("etag"):
            headers["If-None-Match"] = manifest["etag"]
        if manifest.get("last_modified"):
            headers["If-Modified-Since"] = manifest["last_modified"]
    part = target.with_name(target.name + ".part")
    if part.exists():
        headers["Range"] = f"bytes={part.stat().st_size}-"
    timeout = settings.http_timeout_seconds
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
            if resp.status_code == 304:
                log.info("source %s unchanged (HTTP 304); using cached %s", url, target)
                return target, manifest
            if resp.status_code == 416 and part.exists():
                part.unlink()  # our partial file is longer than the remote: start again
                return fetch(url, settings)
            if resp.status_code not in (200, 206):
                raise SourceError(f"source {url}: HTTP {resp.status_code} {resp.reason}")
            mode = "ab" if resp.status_code == 206 else "wb"
            with open(part, mode) as f:
                for chunk in resp.iter_content(chunk_size=8 << 20):
                    f.write(chunk)
            etag = resp.headers.get("ETag")
            last_modified = resp.headers.get("Last-Modified")
            expected = resp.headers.get("Content-Range", "").rpartition("/")[2] or resp.headers.get("Content-Length")
    except requests.Timeout as exc:
        raise SourceUnavailable(f"source {url}: timed out after {timeout:.0f} s") from exc
    except requests.ConnectionError as exc:
        raise SourceUnavailable(f"source {url}: cannot connect ({exc})") from exc
    size = part.stat().st_size
    if expected and expected.isdigit() and int(expected) != size:
        raise SourceError(f"source {url}: download incomplete ({size} of {expected} bytes); rerun to resume")
    part.replace(target)
    identity = {"kind": "url", "url": url, "path": str(target), "size": size,
                "etag": etag, "last_modified": last_modified, "sha256": sha256_file(target)}
    manifest_path.write_text(json.dumps(identity, indent=2))
    log.info("downloaded %s (%d bytes) to %s", url, size, target)
    return target, identity
