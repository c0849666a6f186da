"""The benchmark harness runs end to end at a tiny scale and writes its table and chart."""

from __future__ import annotations

import json
import shutil
import subprocess

import psycopg
from psycopg import sql

from conftest import ROOT, sample

PATHS = "dag-sedonadb,ogr2ogr,naive,floor-read,floor-copy"
PREFIX = "bench_t"


def test_harness_end_to_end(tmp_path, dsn):
    folder = sample("levels", 0.002)
    stats = json.loads((folder / "stats.json").read_text())
    shutil.copytree(folder, tmp_path / "cache" / folder.name)  # the harness's cache: levels-<scale>-<seed>
    results = tmp_path / "results"
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "run.py"), "--scale", "0.002",
                    "--seed", "7", "--repeats", "1", "--paths", PATHS, "--prefix", PREFIX,
                    "--cache", str(tmp_path / "cache"), "--results", str(results)], check=True, cwd=ROOT)

    summary = json.loads((results / "scale-0.002.json").read_text())
    assert list(summary["median"]) == PATHS.split(",")
    assert summary["features"] == sum(v["features"] for v in stats["levels"].values())
    for path, m in summary["median"].items():
        assert m["wall_s"] > 0 and m["cpu_s"] >= 0 and m["peak_rss_mb"] > 10, path
    dag = summary["median"]["dag-sedonadb"]
    assert 0 < dag["data_path_s"] < dag["wall_s"] and dag["airflow_overhead_s"] > 0
    table = (results / "scale-0.002.md").read_text()
    for path in PATHS.split(","):
        assert f"| {path} (" in table
    assert "## Targets" in table
    for png in ("scale-0.002.png", "scaling.png"):
        assert (results / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # What the paths loaded: every source feature, in the DAG's, ogr2ogr's and the floor's tables.
    with psycopg.connect(dsn, autocommit=True) as conn:
        for level, info in stats["levels"].items():
            for schema_name in (f"{PREFIX}_dag", f"{PREFIX}_ogr", f"{PREFIX}_floor", f"{PREFIX}_naive"):
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema_name), sql.Identifier(f"adm_{level}"))).fetchone()[0]
                assert count == info["features"], (schema_name, level)
        for suffix in ("dag", "dag_meta", "dag_ddl", "ogr", "floor", "naive"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f"{PREFIX}_{suffix}")))
