"""Benchmark harness: this project's DAG against ogr2ogr, naive GeoPandas and the floor.

    bin/bench --scale 0.2            # or: make bench SCALE=0.2

Generates (or reuses, under bench/cache/) the GADM-shaped sample at a scale and
seed, then runs every path side by side, interleaved, `--repeats` times, each
in its own process (wall, CPU and peak RSS from wait4; PostgreSQL backends'
peak RSS sampled from /proc), and writes `bench/results/scale-<S>.{md,json,png}`
plus the scaling curve over every scale measured so far (`scaling.{md,png}`).
Paths (see docs/benchmarks.md): dag-geopandas, dag-sedonadb, ogr2ogr,
ogr2ogr-bare, ogr2ogr-lz4, naive, floor-read, floor-copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

import report  # noqa: E402  (bench/report.py: tables and charts)

APP = "gadm-bench"
PATHS = ["dag-geopandas", "dag-sedonadb", "ogr2ogr", "ogr2ogr-bare", "ogr2ogr-lz4", "naive",
         "floor-read", "floor-copy", "floor-copy-pglz", "floor-copy-lz4"]
# Geometry column storage of the floor's tables: the project's choice and the two compressed ones.
FLOOR_STORAGE = {"floor-copy": None, "floor-copy-pglz": "pglz", "floor-copy-lz4": "lz4"}
# Target schema of each path that writes tables, after the --prefix (default "bench").
SCHEMAS = {"dag-geopandas": "dag", "dag-sedonadb": "dag", "ogr2ogr": "ogr", "ogr2ogr-bare": "ogr_bare",
           "ogr2ogr-lz4": "ogr_lz4", "naive": "naive", "floor-copy": "floor", "floor-copy-pglz": "floor_pglz",
           "floor-copy-lz4": "floor_lz4"}
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def schema_of(path: str, prefix: str) -> str:
    return f"{prefix}_{SCHEMAS.get(path, 'none')}"


def _secrets() -> dict[str, str]:
    lines = (ROOT / "var" / "secrets.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def dsn() -> str:
    return f"host=127.0.0.1 port=5432 dbname=gadm user=gadm password={_secrets()['GADM_DB_PASSWORD']}"


def sample(scale: float, seed: int, cache: Path) -> Path:
    """The levels-layout sample at `scale`/`seed`, generated once into the cache."""
    folder = cache / f"levels-{scale}-{seed}"
    if not (folder / "stats.json").exists():
        from gadm_airflow.synth import generate

        print(f"[bench] generating scale {scale} seed {seed} into {folder}", flush=True)
        generate(folder, scale=scale, seed=seed, layout="levels")
    return folder / "gadm_410-levels.gpkg"


def layers(gpkg: Path) -> list[str]:
    import pyogrio

    return sorted(str(name) for name, _ in pyogrio.list_layers(gpkg) if str(name).startswith("ADM_"))


# --- measuring one run ------------------------------------------------------------------

class PeakSampler(threading.Thread):
    """Peak RSS (VmHWM) of the largest process in the run's process tree, and of the
    PostgreSQL backends serving `application_name = APP`, sampled every `every` seconds.

    (wait4's ru_maxrss would count the harness's own pages in each forked child before it
    execs, overstating small programs such as ogr2ogr; VmHWM belongs to the exec'd image.)"""

    def __init__(self, root_pid: int, conninfo: str, every: float = 0.1):
        super().__init__(daemon=True)
        self.root_pid, self.conninfo, self.every = root_pid, conninfo, every
        self.client_kb = self.backend_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        import psutil

        with psycopg.connect(self.conninfo, autocommit=True, application_name="gadm-bench-monitor") as conn:
            while not self._done.is_set():
                try:
                    root = psutil.Process(self.root_pid)
                    tree = [root.pid] + [c.pid for c in root.children(recursive=True)]
                except psutil.Error:
                    tree = []
                for pid in tree:
                    self.client_kb = max(self.client_kb, _vm_hwm_kb(pid))
                pids = [r[0] for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s OR leader_pid IN "
                    "(SELECT pid FROM pg_stat_activity WHERE application_name = %s)", (APP, APP))]
                for pid in pids:
                    self.backend_kb = max(self.backend_kb, _vm_hwm_kb(pid))
                self._done.wait(self.every)

    def stop(self) -> tuple[float, float]:
        self._done.set()
        self.join()
        return round(self.client_kb / 1024, 1), round(self.backend_kb / 1024, 1)


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(argv: list[str], env: dict, log: Path) -> dict:
    """Run `argv` to completion; wall, CPU (with children) and peak RSS of its largest process."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        sampler = PeakSampler(proc.pid, dsn())
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    client, backend = sampler.stop()
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {proc.returncode}; log {log}:\n" + "\n".join(tail))
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mb": client, "pg_backend_peak_mb": backend}


def base_env(report_dir: Path, cache: Path) -> dict:
    env = dict(os.environ)
    env.update(PGAPPNAME=APP, PGPASSWORD=_secrets()["GADM_DB_PASSWORD"], PYTHONWARNINGS="ignore",
               SCARF_NO_ANALYTICS="true", DO_NOT_TRACK="1", GADM_REPORT_DIR=str(report_dir),
               PYTHONPATH=str(ROOT / "include"), GADM_WORK_DIR=str(cache.resolve() / "work"))
    env["GADM_ALLOWED_ROOTS"] = os.pathsep.join(
        [str(cache.resolve()), str(ROOT / "data"), str(ROOT / "var" / "cache")])
    return env


# --- the paths ------------------------------------------------------------------------

def _ogr_script(gpkg: Path, names: list[str], schema_name: str, *, makevalid: bool, link: bool) -> str:
    pg = "PG:host=127.0.0.1 port=5432 dbname=gadm user=gadm"
    cmds = ["set -e"]
    for layer in names:
        cmd = ["ogr2ogr", "-f", "PostgreSQL", pg, str(gpkg), layer, "-nln", layer.lower(),
               "--config", "PG_USE_COPY", "YES", "-nlt", "PROMOTE_TO_MULTI",
               "-lco", "GEOMETRY_NAME=geom", "-lco", "FID=fid", "-lco", "SPATIAL_INDEX=GIST", "-lco", f"SCHEMA={schema_name}",
               "-lco", "OVERWRITE=YES"] + (["-makevalid"] if makevalid else [])
        cmds.append(shlex.join(cmd))
    if link:
        cmds.append(shlex.join(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "gadm",
                                "gadm", "-c", ogr_link_sql(schema_name, names)]))
    return "\n".join(cmds)


def ogr_link_sql(schema_name: str, names: list[str]) -> str:
    """The parent-FK work on ogr2ogr's tables: GID indexes, parent_id by join, FK, ANALYZE."""
    levels = sorted(int(n.split("_")[1]) for n in names)
    s = schema_name
    out = ["BEGIN;", "SET LOCAL maintenance_work_mem = '512MB';"]
    for n in levels:
        out.append(f"CREATE INDEX ON {s}.adm_{n} (gid_{n});")
    for n in levels:
        if n == 0 or n - 1 not in levels:
            continue
        out += [f"ALTER TABLE {s}.adm_{n} ADD COLUMN parent_id integer;",
                f"UPDATE {s}.adm_{n} c SET parent_id = p.fid FROM {s}.adm_{n - 1} p "
                f"WHERE p.gid_{n - 1} = c.gid_{n - 1};",
                f"CREATE INDEX ON {s}.adm_{n} (parent_id);",
                f"ALTER TABLE {s}.adm_{n} ADD FOREIGN KEY (parent_id) REFERENCES {s}.adm_{n - 1} (fid);"]
    out += [f"ANALYZE {s}.adm_{n};" for n in levels] + ["COMMIT;"]
    return "\n".join(out)


def command(path: str, gpkg: Path, names: list[str], work: Path, env: dict,
            prefix: str) -> tuple[list[str], dict]:
    """argv and environment of one run of `path`."""
    env = dict(env)
    if path.startswith("dag-"):
        conf = {"source": str(gpkg), "schema": schema_of(path, prefix), "engine": path[4:], "force": True}
        return [str(ROOT / "bin" / "airflow"), "dags", "test", "gadm_load", "-c", json.dumps(conf)], env
    if path.startswith("ogr2ogr"):
        if path == "ogr2ogr-lz4":
            env["PGOPTIONS"] = "-c default_toast_compression=lz4"
        script = _ogr_script(gpkg, names, schema_of(path, prefix), makevalid=path != "ogr2ogr-bare",
                             link=path != "ogr2ogr-bare")
        return ["bash", "-c", script], env
    worker = "floor-copy" if path in FLOOR_STORAGE else path
    return [PYTHON, str(ROOT / "bench" / "run.py"), "--worker", worker, "--source", str(gpkg),
            "--work", str(work), "--schema", schema_of(path, prefix),
            "--compression", FLOOR_STORAGE.get(path) or ""], env


def drop_schema(name: str) -> None:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))


def schema_bytes(name: str) -> int:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        return int(conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (name,)).fetchone()[0])


def dag_phases(report_dir: Path, log: Path) -> dict:
    """Per-phase seconds of the DAG's own work, from the report the run wrote."""
    finished = [line for line in log.read_text(errors="replace").splitlines() if "DagRun Finished" in line]
    if not finished or "state=success" not in finished[-1] or not (report_dir / "latest.json").exists():
        raise RuntimeError(f"the DAG run did not succeed or wrote no report; see {log}")
    summary = json.loads((report_dir / "latest.json").read_text())
    phases: dict[str, float] = {}
    for level in summary["levels"]:
        for name, sec in level["seconds"].items():
            phases[name] = phases.get(name, 0.0) + sec
    for step in ("link", "verify", "publish"):
        phases[step] = summary.get(f"{step}_seconds") or 0.0
    task_peak = max(level["peak_rss_mb"] for level in summary["levels"])
    return {"phases": {k: round(v, 3) for k, v in phases.items()},
            "data_path_s": round(sum(phases.values()), 3), "task_peak_rss_mb": task_peak}


# --- workers (run in their own process, so their RSS is measured alone) ------------------

def worker_naive(gpkg: Path, schema_name: str) -> None:
    import geopandas
    import sqlalchemy

    url = sqlalchemy.engine.URL.create("postgresql+psycopg", "gadm", _secrets()["GADM_DB_PASSWORD"],
                                       "127.0.0.1", 5432, "gadm", query={"application_name": APP})
    engine = sqlalchemy.create_engine(url)
    for layer in layers(gpkg):
        frame = geopandas.read_file(gpkg, layer=layer)
        frame.to_postgis(layer.lower(), engine, schema=schema_name, if_exists="replace")
        del frame


def worker_floor_read(gpkg: Path) -> None:
    import pyogrio

    for layer in layers(gpkg):
        pyogrio.read_arrow(gpkg, layer=layer)


def worker_floor_copy(work: Path, schema_name: str, compression: str) -> None:
    """COPY the prepared binary dumps of the DAG's final tables into empty tables, then index.

    The tables are LIKE the DAG's (geometry STORAGE EXTERNAL); with `compression` (pglz or
    lz4) the geometry column is compressible (STORAGE EXTENDED) with that method instead."""
    meta = json.loads((work / "dump" / "tables.json").read_text())
    with psycopg.connect(dsn(), application_name=APP) as conn, conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET synchronous_commit = off")
        for name, info in meta.items():
            target = sql.SQL("{}.{}").format(sql.Identifier(schema_name), sql.Identifier(name))
            cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING STORAGE)").format(
                target, sql.SQL("{}.{}").format(sql.Identifier(info["schema"]), sql.Identifier(name))))
            if compression:
                cur.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN geom SET STORAGE EXTENDED, "
                                    "ALTER COLUMN geom SET COMPRESSION {}").format(target, sql.SQL(compression)))
            with open(work / "dump" / f"{name}.copy", "rb") as src, cur.copy(
                    sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(target)) as copy:
                while chunk := src.read(1 << 20):
                    copy.write(chunk)
            cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(target))
            cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(target))
            cur.execute(sql.SQL("CREATE INDEX ON {} ({})").format(target, sql.Identifier(info["gid"])))
            if "parent_id" in info["columns"]:
                cur.execute(sql.SQL("CREATE INDEX ON {} (parent_id)").format(target))
            cur.execute(sql.SQL("ANALYZE {}").format(target))
        conn.commit()


def prepare_dump(work: Path, schema_name: str) -> None:
    """Binary dumps of the DAG's published tables (once per sample): the floor's input."""
    out = work / "dump"
    if (out / "tables.json").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    meta = {}
    with psycopg.connect(dsn()) as conn, conn.cursor() as cur:
        names = [r[0] for r in cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema_name,))]
        for name in names:
            cols = [r[0] for r in cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position", (schema_name, name))]
            with open(out / f"{name}.copy", "wb") as dst, cur.copy(sql.SQL(
                    "COPY {}.{} TO STDOUT (FORMAT BINARY)").format(sql.Identifier(schema_name),
                                                                  sql.Identifier(name))) as copy:
                for chunk in copy:
                    dst.write(chunk)
            meta[name] = {"schema": schema_name, "columns": cols, "gid": "gid_" + name.split("_")[1]}
    # The floor's tables are created LIKE these: keep a copy that later DAG runs do not replace.
    ddl = f"{schema_name}_ddl"
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ddl)))
        for name in meta:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(ddl), sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE TABLE {}.{} (LIKE {}.{} INCLUDING STORAGE)").format(
                sql.Identifier(ddl), sql.Identifier(name), sql.Identifier(schema_name), sql.Identifier(name)))
            meta[name]["schema"] = ddl
    (out / "tables.json").write_text(json.dumps(meta, indent=1))


# --- the run --------------------------------------------------------------------------

def run(scale: float, seed: int, repeats: int, paths: list[str], cache: Path, results: Path,
        once: set[str], prefix: str = "bench") -> dict:
    gpkg = sample(scale, seed, cache)
    work = gpkg.parent
    stats = json.loads((work / "stats.json").read_text())
    features = sum(v["features"] for v in stats["levels"].values())
    source_mb = gpkg.stat().st_size / 1e6
    names = layers(gpkg)
    logs = cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {p: [] for p in paths}
    floors = [i for i, p in enumerate(paths) if p in FLOOR_STORAGE]
    dag_before_floor = not floors or any(p.startswith("dag-") for p in paths[:floors[0]])
    if not dag_before_floor and not (work / "dump" / "tables.json").exists():
        print("[bench] preparing the floor's binary dump with one dag-geopandas run", flush=True)
        argv, env = command("dag-geopandas", gpkg, names, work, base_env(cache / "reports" / "prepare", cache),
                            prefix)
        measure(argv, env, logs / "prepare.log")
        dag_phases(cache / "reports" / "prepare", logs / "prepare.log")
    for rep in range(repeats):
        for path in paths:
            if path in once and runs[path]:
                continue
            if path in SCHEMAS and not path.startswith("dag-"):
                drop_schema(schema_of(path, prefix))
            report_dir = cache / "reports" / f"{path}-{scale}"
            (report_dir / "latest.json").unlink(missing_ok=True)
            if path in FLOOR_STORAGE:  # its input: the final tables of this sample, dumped once
                prepare_dump(work, schema_of("dag-geopandas", prefix))
            argv, env = command(path, gpkg, names, work, base_env(report_dir, cache), prefix)
            log = logs / f"{path}-{scale}-{rep}.log"
            for attempt in (1, 2):  # the machine is shared: one retry, then the failure stands
                try:
                    result = measure(argv, env, log)
                    if path.startswith("dag-"):
                        result.update(dag_phases(report_dir, log))
                    break
                except RuntimeError as exc:
                    if attempt == 2:
                        raise
                    print(f"[bench] {path} failed, retrying once: {str(exc).splitlines()[0]}", flush=True)
                    log = log.with_suffix(".retry.log")
            if path in SCHEMAS:
                result["disk_mb"] = round(schema_bytes(schema_of(path, prefix)) / 1e6, 1)
            runs[path].append(result)
            print(f"[bench] scale {scale} rep {rep + 1}/{repeats} {path}: {result['wall_s']:.2f} s wall, "
                  f"{result['cpu_s']:.1f} s CPU, {result['peak_rss_mb']:.0f} MB", flush=True)
        summary = write_results(scale, seed, rep + 1, features, source_mb, names, runs, results)
    return summary


def write_results(scale, seed, rounds, features, source_mb, names, runs, results: Path) -> dict:
    """Medians over the rounds so far, as JSON, Markdown and charts (rewritten after every round)."""
    summary = {"scale": scale, "seed": seed, "repeats": rounds, "features": features,
               "source_mb": round(source_mb, 1), "layers": names, "runs": runs,
               "median": {p: median_of(r, features, source_mb) for p, r in runs.items() if r},
               "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 1),
                           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    results.mkdir(parents=True, exist_ok=True)
    (results / f"scale-{scale}.json").write_text(json.dumps(summary, indent=1))
    report.write_scale(summary, results)
    report.write_scaling(results)
    return summary


def median_of(runs: list[dict], features: int, source_mb: float) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    out = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    if "phases" in runs[0]:
        out["phases"] = {k: round(statistics.median(r["phases"][k] for r in runs), 3) for k in runs[0]["phases"]}
        out["airflow_overhead_s"] = round(statistics.median(r["wall_s"] - r["data_path_s"] for r in runs), 3)
    out["features_per_s"] = round(features / out["wall_s"], 1)
    out["mb_per_s"] = round(source_mb / out["wall_s"], 2)
    out["n"] = len(runs)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7, help="sample seed (the committed results use 7)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of " + ", ".join(PATHS))
    parser.add_argument("--once", default="", help="paths to run only in the first round (e.g. naive at scale 1)")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "cache")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--prefix", default="bench", help="prefix of the schemas written (bench_dag, ...)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--compression", choices=["", "pglz", "lz4"], default="", help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true", help="only re-render results/ from its JSON files")
    args = parser.parse_args(argv)
    if args.render:
        for path in sorted(args.results.glob("scale-*.json")):
            report.write_scale(json.loads(path.read_text()), args.results)
        return report.write_scaling(args.results)
    if args.worker == "naive":
        return worker_naive(args.source, args.schema)
    if args.worker == "floor-read":
        return worker_floor_read(args.source)
    if args.worker == "floor-copy":
        return worker_floor_copy(args.work, args.schema, args.compression)
    paths = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"--paths: unknown {unknown}; choose from {PATHS}")
    summary = run(args.scale, args.seed, args.repeats, paths, args.cache, args.results,
                  {p for p in args.once.split(",") if p}, args.prefix)
    print((args.results / f"scale-{summary['scale']}.md").read_text())


if __name__ == "__main__":
    main()
