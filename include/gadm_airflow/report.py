"""Gather the per-level XComs into one benchmark summary and a readable table."""

from __future__ import annotations

import json
import re
from pathlib import Path

PHASES = ("read", "transform", "write", "copy", "index", "analyze")


def summarise(levels: list[dict], link: dict, verify: dict, publish: dict, engine: str, source: dict) -> dict:
    per_level = []
    for r in sorted(levels, key=lambda r: r["level"]):
        seconds = {p: r["seconds"].get(p, 0.0) for p in PHASES}
        total = round(sum(seconds.values()), 3)
        per_level.append({
            "level": r["level"], "layer": r["layer"], "rows_in": r["rows_in"], "rows": r["rows_out"],
            "repaired": r["repaired"], "null_geometries": r["null_geometries"],
            "bytes": r["bytes"], "seconds": seconds, "total_seconds": total,
            "rows_per_s": round(r["rows_out"] / total, 1) if total else None,
            "mb_per_s": round(r["bytes"] / 1e6 / total, 2) if total else None,
            "peak_rss_mb": max(r["peak_rss_mb"], r.get("load_peak_rss_mb", 0.0)),
        })
    rows = sum(r["rows"] for r in per_level)
    seconds = round(sum(r["total_seconds"] for r in per_level), 3)
    return {
        "engine": engine,
        "source": source.get("source"),
        "source_sha256": source.get("identity", {}).get("sha256"),
        "levels": per_level,
        "link_seconds": link.get("seconds"),
        "verify_seconds": verify.get("seconds"),
        "publish_seconds": publish.get("seconds"),
        "total": {
            "rows": rows, "bytes": sum(r["bytes"] for r in per_level), "seconds": seconds,
            "rows_per_s": round(rows / seconds, 1) if seconds else None,
            "peak_rss_mb": max((r["peak_rss_mb"] for r in per_level), default=0.0),
        },
        "orphans": {str(r["level"]): r["orphans"] for r in link.get("levels", [])},
    }


def format_table(summary: dict) -> str:
    head = ["level", "rows", "repaired", *PHASES, "total s", "rows/s", "MB/s", "peak MB"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in summary["levels"]:
        lines.append(" | ".join(str(v) for v in [
            r["layer"], r["rows"], r["repaired"], *(f"{r['seconds'][p]:.2f}" for p in PHASES),
            f"{r['total_seconds']:.2f}", r["rows_per_s"], r["mb_per_s"], r["peak_rss_mb"]]))
    t = summary["total"]
    lines.append(f"total: {t['rows']} rows in {t['seconds']:.2f} s of level work "
                 f"({t['rows_per_s']} rows/s); link {summary['link_seconds']} s, "
                 f"verify {summary['verify_seconds']} s, "
                 f"publish {summary['publish_seconds']} s; engine {summary['engine']}")
    return "\n".join(lines)


def file_stem(run_id: str) -> str:
    """A run id as a file or folder name (`manual__2026-...+00:00` has ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def write(summary: dict, table: str, report_dir: Path, run_id: str) -> Path:
    """Write the summary as JSON and Markdown (per run and as `latest`)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(run_id)
    for name in (stem, "latest"):
        (report_dir / f"{name}.json").write_text(json.dumps(summary, indent=2))
        (report_dir / f"{name}.md").write_text(f"# gadm_load {run_id}\n\n{table}\n")
    return report_dir / f"{stem}.json"
