"""Markdown tables and PNG charts of benchmark results (bench/results/)."""

from __future__ import annotations

import json
from pathlib import Path

LABELS = {
    "dag-geopandas": "this project, whole DAG, geopandas engine",
    "dag-sedonadb": "this project, whole DAG, sedonadb engine",
    "ogr2ogr": "ogr2ogr -makevalid + GiST + parent FK SQL (comparable work)",
    "ogr2ogr-bare": "ogr2ogr bare load + GiST (no -makevalid, no FK)",
    "ogr2ogr-lz4": "ogr2ogr comparable work, lz4 TOAST compression",
    "naive": "naive geopandas read_file + to_postgis",
    "floor-read": "floor: pyogrio.read_arrow of every layer",
    "floor-copy": "floor: binary COPY of the final tables + indexes",
    "floor-copy-pglz": "the floor with pglz-compressed geometry (PostgreSQL's default)",
    "floor-copy-lz4": "the floor with lz4-compressed geometry",
}


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "–"


def targets(summary: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, bound, met) rows for the issue's targets."""
    m = summary["median"]
    wall = {p: v["wall_s"] for p, v in m.items()}
    floor = (wall.get("floor-read") or 0) + (wall.get("floor-copy") or 0)
    rows = []
    for dag in ("dag-geopandas", "dag-sedonadb"):
        if dag not in m:
            continue
        if "ogr2ogr" in wall:
            r = wall[dag] / wall["ogr2ogr"]
            rows.append((f"{dag} wall / ogr2ogr (comparable)", f"{r:.2f}", "≤ 0.50", r <= 0.5))
        if "ogr2ogr-lz4" in wall:
            r = wall[dag] / wall["ogr2ogr-lz4"]
            rows.append((f"{dag} wall / ogr2ogr-lz4", f"{r:.2f}", "< 1.00", r < 1.0))
        if floor and "floor-read" in wall and "floor-copy" in wall:
            r = m[dag]["data_path_s"] / floor
            rows.append((f"{dag} data path / floor (read + COPY + index)", f"{r:.2f}", "≤ 1.50", r <= 1.5))
        if "naive" in wall:
            r = wall["naive"] / wall[dag]
            rows.append((f"naive / {dag} wall", f"{r:.1f}", "≥ 10", r >= 10))
        data = m[dag]["data_path_s"]  # the same comparisons without Airflow's fixed overhead
        for ref, bound, ok in (("ogr2ogr", "≤ 0.50", lambda r: r <= 0.5), ("ogr2ogr-lz4", "< 1.00", lambda r: r < 1)):
            if ref in wall:
                rows.append((f"{dag} data path / {ref}", f"{data / wall[ref]:.2f}", bound, ok(data / wall[ref])))
        if "naive" in wall:
            rows.append((f"naive / {dag} data path", f"{wall['naive'] / data:.1f}", "≥ 10", wall["naive"] / data >= 10))
        rows.append((f"{dag} peak RSS of the task process (MB)", f"{m[dag]['peak_rss_mb']:.0f}",
                     "≤ 1024", m[dag]["peak_rss_mb"] <= 1024))
    return rows


def scale_table(summary: dict) -> str:
    m = summary["median"]
    ref = m.get("ogr2ogr", {}).get("wall_s")
    head = ["path", "wall s", "CPU s", "peak RSS MB", "PG backend peak MB", "features/s", "MB/s",
            "disk MB", "wall vs ogr2ogr"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path, v in m.items():
        lines.append("| " + " | ".join([
            f"{path} ({LABELS.get(path, path)})", f"{v['wall_s']:.2f}", f"{v['cpu_s']:.2f}",
            f"{v['peak_rss_mb']:.0f}", f"{v.get('pg_backend_peak_mb', 0):.0f}",
            f"{v['features_per_s']:.0f}", f"{v['mb_per_s']:.1f}",
            f"{v['disk_mb']:.0f}" if "disk_mb" in v else "–", _ratio(v["wall_s"], ref)]) + " |")
    return "\n".join(lines)


def dag_table(summary: dict) -> str:
    rows = [(p, v) for p, v in summary["median"].items() if "phases" in v]
    if not rows:
        return ""
    phases = list(rows[0][1]["phases"])
    head = ["engine", "wall s", "Airflow overhead s", "data path s", *phases]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path, v in rows:
        lines.append("| " + " | ".join([path[4:], f"{v['wall_s']:.2f}", f"{v['airflow_overhead_s']:.2f}",
                                        f"{v['data_path_s']:.2f}",
                                        *(f"{v['phases'][p]:.2f}" for p in phases)]) + " |")
    return "\n".join(lines)


def markdown(summary: dict) -> str:
    t = "\n".join(f"| {name} | {got} | {bound} | {'met' if ok else 'MISSED'} |"
                  for name, got, bound, ok in targets(summary))
    return (f"# Benchmark, scale {summary['scale']} (seed {summary['seed']})\n\n"
            f"{summary['features']} features in {len(summary['layers'])} layers, "
            f"{summary['source_mb']} MB GeoPackage; medians of {summary['repeats']} interleaved rounds "
            f"({summary['machine']['cpus']} CPUs, {summary['machine']['when']}).\n\n"
            f"{scale_table(summary)}\n\n## The DAG's time, by phase (medians)\n\n{dag_table(summary)}\n\n"
            f"## Targets\n\n| target | measured | bound | |\n|---|---|---|---|\n{t}\n\n"
            f"![wall seconds per path](scale-{summary['scale']}.png)\n")


def chart_scale(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = summary["median"]
    names = list(m)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    data = [m[n].get("data_path_s", m[n]["wall_s"]) for n in names]
    over = [m[n]["wall_s"] - d for n, d in zip(names, data)]
    ax.barh(names, data, color="#3b75af", label="work (DAG: data path)")
    ax.barh(names, over, left=data, color="#c9c9c9", label="Airflow fixed overhead")
    for i, n in enumerate(names):
        ax.text(m[n]["wall_s"], i, f" {m[n]['wall_s']:.1f} s", va="center", fontsize=8)
    ax.set_xlabel("wall seconds (median)")
    ax.set_title(f"GADM-shaped sample, scale {summary['scale']}: {summary['features']} features, "
                 f"{summary['source_mb']:.0f} MB", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_scale(summary: dict, results: Path) -> None:
    (results / f"scale-{summary['scale']}.md").write_text(markdown(summary))
    chart_scale(summary, results / f"scale-{summary['scale']}.png")


def write_scaling(results: Path) -> None:
    """The scaling curve over every scale-*.json in `results`: wall s against features."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = sorted((json.loads(p.read_text()) for p in results.glob("scale-*.json")),
                       key=lambda s: s["scale"])
    if not summaries:
        return
    paths = [p for p in LABELS if any(p in s["median"] for s in summaries)]
    head = ["scale", "features", "MB", *paths]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [f"{s['median'][p]['wall_s']:.2f}" if p in s["median"] else "–" for p in paths]
        lines.append("| " + " | ".join([str(s["scale"]), str(s["features"]), str(s["source_mb"]), *cells]) + " |")
    extra = ["", "DAG data path (wall minus Airflow overhead), seconds:", "",
             "| scale | " + " | ".join(p for p in paths if p.startswith("dag-")) + " |",
             "|---|" + "---|" * len([p for p in paths if p.startswith("dag-")])]
    for s in summaries:
        extra.append(f"| {s['scale']} | " + " | ".join(
            f"{s['median'][p]['data_path_s']:.2f}" if p in s["median"] else "–"
            for p in paths if p.startswith("dag-")) + " |")
    (results / "scaling.md").write_text("# Scaling: median wall seconds by scale\n\n" + "\n".join(lines)
                                        + "\n" + "\n".join(extra) + "\n\n![scaling](scaling.png)\n")
    fig, ax = plt.subplots(figsize=(10, 5))
    for p in paths:
        pts = [(s["features"], s["median"][p]["wall_s"]) for s in summaries if p in s["median"]]
        ax.plot(*zip(*pts), marker="o", label=p)
    for p in [p for p in paths if p.startswith("dag-")]:
        pts = [(s["features"], s["median"][p]["data_path_s"]) for s in summaries if p in s["median"]]
        ax.plot(*zip(*pts), marker=".", linestyle="--", label=f"{p} data path")
    ax.set_xlabel("features")
    ax.set_ylabel("wall seconds (median)")
    ax.set_title("Scaling with sample size (linear axes: straight lines = linear growth)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(results / "scaling.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
