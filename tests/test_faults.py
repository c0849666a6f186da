"""The reliability catalogue: bad input, faults and safety, through real DAG runs.

Every failing case asserts the error message (in the task log), the task states
(the failing task tried once: no retries for bad input; link/publish never ran)
and that the live tables are exactly what they were before (row fingerprints).
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import pyogrio
import pytest
import shapely

from conftest import ROOT, TEST_DATA, live_fingerprint, run_dag, sample, sample_stats
from gadm_airflow import schema, source
from gadm_airflow import verify as verify_mod
from gadm_airflow.errors import SourceError, SourceUnavailable
from gadm_airflow.settings import Settings

SCHEMA = "faults"
BAD = TEST_DATA / "bad"


@pytest.fixture(scope="module")
def levels_sample():
    return sample("levels", 0.002)


@pytest.fixture(scope="module")
def baseline(gadm_dag, levels_sample, dsn):
    """A published load the failing runs must leave untouched."""

    state, _ = run_dag(gadm_dag, {"source": str(levels_sample / schema.LEVELS_FILE), "schema": SCHEMA, "force": True})
    assert state == "success"
    with psycopg.connect(dsn, autocommit=True) as conn:
        return live_fingerprint(conn, SCHEMA)


def bad_file(name: str) -> Path:
    path = BAD / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    return path


def write_levels(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> Path:
    for name, frame in layers.items():
        pyogrio.write_dataframe(frame, path, layer=name, layer_options={"GEOMETRY_NAME": "geom"},
                                promote_to_multi=False, append=path.exists())
    return path


def read_levels(levels_sample, levels=(0, 1, 2)) -> dict[str, gpd.GeoDataFrame]:
    src = levels_sample / schema.LEVELS_FILE
    return {schema.levels_layer(n): pyogrio.read_dataframe(src, layer=schema.levels_layer(n)) for n in levels}


@pytest.fixture()
def run_logs(capfd, caplog):
    """A function returning everything logged so far: task output and log records."""
    def read() -> str:
        out = capfd.readouterr()
        return out.out + out.err + caplog.text
    return read


def expect_failure(gadm_dag, db, baseline, run_logs, conf: dict, failing_task: str, message: str):
    state, _, states, tries = run_dag(gadm_dag, {"schema": SCHEMA, "force": True, **conf}, with_states=True)
    logs = run_logs()
    assert state == "failed"
    assert states[failing_task] == {"failed"}
    assert tries[failing_task] == 1, "bad input must fail without retries"
    for later in ("link", "publish", "report"):
        assert states.get(later, {"None"}) & {"success", "running"} == set(), f"{later} must not run"
    assert message in logs, f"{message!r} not in the task log"
    assert live_fingerprint(db, SCHEMA) == baseline, "live tables changed"
    return logs


# --- bad sources -------------------------------------------------------------------------

def test_path_that_does_not_exist(gadm_dag, db, baseline, run_logs):
    missing = TEST_DATA / "nowhere" / "gadm_410-levels.gpkg"
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(missing)}, "resolve_source",
                   f"source {str(missing)!r}: no such file or directory")


def test_truncated_geopackage(gadm_dag, db, baseline, run_logs, levels_sample):
    path = bad_file("truncated/gadm_410-levels.gpkg")
    path.write_bytes((levels_sample / schema.LEVELS_FILE).read_bytes()[:20_000])
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(path)}, "resolve_source",
                   f"{path}: cannot be opened")


def test_zip_without_gadm_file(gadm_dag, db, baseline, run_logs):
    path = bad_file("nogadm.zip")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.txt", "nothing here")
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(path)}, "resolve_source",
                   "the zip holds no GeoPackage or shapefile")


def test_geopackage_whose_layers_are_not_gadm(gadm_dag, db, baseline, run_logs):
    path = bad_file("roads.gpkg")
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=4326)
    pyogrio.write_dataframe(frame, path, layer="roads")
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(path)}, "resolve_source",
                   "no GADM layers found")


def test_layer_missing_its_key_column(gadm_dag, db, baseline, run_logs, levels_sample):
    layers = read_levels(levels_sample)
    layers["ADM_1"] = layers["ADM_1"].drop(columns=["GID_1"])
    path = write_levels(bad_file("nokey/gadm_410-levels.gpkg"), layers)
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(path)}, "resolve_source",
                   "layer ADM_1: key column GID_1 missing")


def test_layer_without_crs(gadm_dag, db, baseline, run_logs, levels_sample):
    layers = read_levels(levels_sample, levels=(0,))
    layers["ADM_0"] = layers["ADM_0"].set_crs(None, allow_override=True)
    path = write_levels(bad_file("nocrs/gadm_410-levels.gpkg"), layers)
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(path)}, "resolve_source",
                   "layer ADM_0: no CRS")


def test_non_polygon_layer(gadm_dag, db, baseline, run_logs, levels_sample):
    layers = read_levels(levels_sample, levels=(0,))
    layers["ADM_0"] = layers["ADM_0"].set_geometry(layers["ADM_0"].geometry.centroid)
    path = write_levels(bad_file("points/gadm_410-levels.gpkg"), layers)
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(path)}, "resolve_source",
                   "layer ADM_0: geometry type 'Point' is not polygonal")


@pytest.mark.parametrize("bad", ["/etc/passwd", "file:///etc/passwd", "../../etc/hostname", "symlink"])
def test_sources_outside_the_allowed_roots(gadm_dag, db, baseline, run_logs, bad):
    if bad == "symlink":
        link = bad_file("escape.gpkg")
        link.symlink_to("/etc/hostname")
        bad = str(link)
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": bad}, "resolve_source",
                   "outside the allowed roots")


def test_disk_full_while_preprocessing(gadm_dag, db, baseline, run_logs, levels_sample, tmp_path, monkeypatch):
    work = tmp_path / "tiny-work"
    work.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(work)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        monkeypatch.setenv("GADM_WORK_DIR", str(work))
        expect_failure(gadm_dag, db, baseline, run_logs, {"source": str(levels_sample / schema.LEVELS_FILE)},
                       "level.preprocess", "no space left in the work dir")
    finally:
        subprocess.run(["umount", str(work)], check=False)


# --- bad params and injection ---------------------------------------------------------------

@pytest.mark.parametrize("conf", [
    {"levels": [7]}, {"levels": [-1]}, {"batch_rows": 0}, {"batch_rows": -3}, {"batch_rows": 10**12},
    {"engine": "spark"}, {"schema": "gadm; DROP TABLE gadm.adm_0"}, {"schema": '"x"."y"'},
])
def test_absurd_params_are_refused_before_a_run(gadm_dag, db, baseline, conf):
    from airflow.sdk.definitions.param import ParamValidationError

    def state():  # every table in the database by name, and the rows of the target
        tables = db.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname LIKE 'faults%%' "
                            "OR schemaname IN ('public', 'gadm')").fetchall()
        return sorted(tables), live_fingerprint(db, SCHEMA), live_fingerprint(db, "public")

    before = state()
    with pytest.raises(ParamValidationError):
        run_dag(gadm_dag, {"schema": SCHEMA, **conf})
    assert state() == before, "a refused run changed the database"


# --- dirty data that loads, reported ------------------------------------------------------------

def test_dirty_features_load_and_are_accounted_for(gadm_dag, db, run_logs, levels_sample):
    layers = read_levels(levels_sample, levels=(0, 1, 2))
    adm2 = layers["ADM_2"].copy()
    n = len(adm2)
    assert n >= 6
    spike = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1), (0, 0), (-1, -1), (0, 0)])  # polygon + line
    adm2.loc[0, "geometry"] = None                      # NULL geometry
    adm2.loc[1, "geometry"] = shapely.Polygon()         # empty geometry
    adm2.loc[2, "geometry"] = spike
    duplicate = adm2.iloc[[3]].copy()                   # the same GID twice
    adm2 = gpd.GeoDataFrame(pd.concat([adm2, duplicate], ignore_index=True), crs=4326)
    layers["ADM_2"] = adm2
    layers["ADM_1"] = layers["ADM_1"].to_crs(3857)      # not EPSG:4326: reprojected, and said
    layers["ADM_3"] = gpd.GeoDataFrame(  # an empty layer
        {c: [] for c in schema.level_columns(3)}, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    path = write_levels(bad_file("dirty/gadm_410-levels.gpkg"), layers)
    state, xcoms = run_dag(gadm_dag, {"source": str(path), "schema": "faults_dirty", "force": True})
    logs = run_logs()
    assert state == "success"
    loads = {x["level"]: x for x in xcoms["level.load"].values()}
    assert loads[2]["rows_out"] == n + 1 and loads[2]["null_geometries"] == 2
    assert loads[2]["dropped_parts"] >= 1 and loads[2]["repaired"] >= 1
    assert loads[2]["duplicate_gid_count"] == 1 and loads[2]["gid_unique"] is False
    assert loads[1]["reprojected"] == len(layers["ADM_1"])
    assert loads[3]["rows_out"] == 0
    count, nulls = db.execute("SELECT count(*), count(*) FILTER (WHERE geom IS NULL) FROM faults_dirty.adm_2").fetchone()
    assert (count, nulls) == (n + 1, 2)
    assert db.execute("SELECT count(*) FROM faults_dirty.adm_3").fetchone()[0] == 0
    unique = db.execute("SELECT indexdef FROM pg_indexes WHERE schemaname='faults_dirty' AND indexname='adm_2_gid_2_idx'").fetchone()[0]
    assert "UNIQUE" not in unique
    # reprojected ADM_1 lands where the original 4326 geometries were
    original = read_levels(levels_sample, levels=(1,))["ADM_1"]
    got = dict(db.execute("SELECT gid_1, ST_AsBinary(geom) FROM faults_dirty.adm_1").fetchall())
    for gid, geom in zip(original["GID_1"], original.geometry):
        assert shapely.from_wkb(bytes(got[gid])).equals_exact(shapely.make_valid(geom), 1e-6) or \
            shapely.area(shapely.symmetric_difference(shapely.from_wkb(bytes(got[gid])), shapely.make_valid(geom))) < 1e-9
    for text in ("NULL or empty geometry; kept with NULL geom", "duplicated GIDs kept as separate rows",
                 "reproject"):
        assert text in logs, text


# --- verification catches staged data that differs from what was preprocessed -------------------

@pytest.fixture(scope="module")
def staged(levels_sample, dsn):
    """Levels 0 and 1 preprocessed, loaded and linked into a staging schema (not published),
    by the task bodies called directly (outside a task, the connection comes from the env)."""
    from gadm_airflow import pipeline

    os.environ["AIRFLOW_CONN_GADM_POSTGIS"] = dsn
    run_id = "verify-test"
    params = {"source": str(levels_sample / schema.LEVELS_FILE), "levels": [0, 1], "schema": "faults_verify"}
    plan = pipeline.check_source(pipeline.resolve_source(params, run_id), True, run_id)
    loads = [pipeline.load_level(pipeline.preprocess_level(item, run_id), item) for item in plan]
    yield plan, pipeline.link_levels(plan, loads)
    del os.environ["AIRFLOW_CONN_GADM_POSTGIS"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{plan[0]["params"]["staging"]}" CASCADE')


@pytest.mark.parametrize("tamper, problem", [
    ("UPDATE {t} SET name_1 = name_1 || 'x' WHERE id = (SELECT min(id) FROM {t})",
     "adm_1: attribute checksum differs"),
    ("UPDATE {t} SET geom = ST_Multi(ST_Translate(geom, 0, 1e-9)) WHERE id = (SELECT min(id) FROM {t})",
     "adm_1: geometry checksum differs"),
    ("DELETE FROM {t} WHERE id = (SELECT min(id) FROM {t})", "rows staged"),
    ("UPDATE {t} SET geom = NULL WHERE id = (SELECT min(id) FROM {t})", "geometries staged"),
    ("UPDATE {t} SET parent_id = NULL WHERE id = (SELECT min(id) FROM {t})", "orphans were reported"),
])
def test_verify_refuses_staging_that_differs_from_preprocessing(staged, dsn, tamper, problem):
    from gadm_airflow import pipeline
    from gadm_airflow.errors import VerificationError

    plan, linked = staged
    assert pipeline.verify_levels(plan, linked)["levels"]  # untouched staging reconciles
    target = f'"{plan[0]["params"]["staging"]}".adm_1'
    with psycopg.connect(dsn) as conn:
        conn.execute(tamper.format(t=target))
        with pytest.raises(VerificationError, match=problem):
            verify_mod.verify_all(conn, plan[0]["params"]["staging"], linked["results"],
                                  {r["level"]: r["orphans"] for r in linked["levels"]})
        conn.rollback()


# --- remote sources -----------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(3)
        return super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             lambda *a, **k: _Handler(*a, directory=str(root), **k))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_that_404s(gadm_dag, db, baseline, run_logs, http_root):
    _, base = http_root
    expect_failure(gadm_dag, db, baseline, run_logs, {"source": f"{base}/gadm_410-levels.gpkg"},
                   "resolve_source", "HTTP 404")


def test_url_timeout_is_transient(http_root, tmp_path, monkeypatch):
    _, base = http_root
    monkeypatch.setenv("GADM_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("GADM_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(SourceUnavailable, match="timed out"):
        source.resolve(f"{base}/slow/x.gpkg", Settings.from_env())
    assert not issubclass(SourceUnavailable, SourceError)  # retried, not failed at once


def test_url_is_downloaded_once_and_loads(gadm_dag, db, http_root, levels_sample, tmp_path, monkeypatch):
    root, base = http_root
    shutil.copy(levels_sample / schema.LEVELS_FILE, root / schema.LEVELS_FILE)
    url = f"{base}/{schema.LEVELS_FILE}"
    state, xcoms = run_dag(gadm_dag, {"source": url, "schema": "faults_url", "levels": [0, 1], "force": True})
    assert state == "success"
    ident = xcoms["resolve_source"][0]["source"]["identity"]
    assert ident["kind"] == "url" and ident["size"] == (root / schema.LEVELS_FILE).stat().st_size
    cached = Path(ident["path"])
    mtime = cached.stat().st_mtime_ns
    again = source.resolve(url, Settings.from_env())
    assert Path(again.local_path).stat().st_mtime_ns == mtime  # not fetched again
    assert db.execute("SELECT count(*) FROM faults_url.adm_1").fetchone()[0] == \
        sample_stats(levels_sample)["levels"]["1"]["features"]


# --- faults during a run -----------------------------------------------------------------------

def _dags_test(conf: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(ROOT / "bin" / "airflow"), "dags", "test", "gadm_load", "-c", conf],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _wait_for_copy(db, timeout: float = 120) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.execute("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY %%adm_%%' "
                      "AND usename = current_user AND pid <> pg_backend_pid()").fetchone()[0]:
            return True
        time.sleep(0.02)
    return False


def test_sigkill_mid_copy_then_rerun(db, baseline, tmp_path):
    big = sample("levels", 0.01)
    conf = f'{{"source": "{big / schema.LEVELS_FILE}", "schema": "{SCHEMA}", "batch_rows": 200, "force": true}}'
    proc = _dags_test(conf, tmp_path / "killed.log")
    try:
        assert _wait_for_copy(db), "no COPY seen"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    time.sleep(1)
    assert live_fingerprint(db, SCHEMA) == baseline, "a killed run changed the live tables"
    env_ttl = {**os.environ, "GADM_STAGING_TTL_SECONDS": "0"}
    rerun = subprocess.run([str(ROOT / "bin" / "airflow"), "dags", "test", "gadm_load", "-c", conf],
                           capture_output=True, text=True, env=env_ttl)
    assert rerun.returncode == 0 and "state=success" in rerun.stdout + rerun.stderr
    stats = sample_stats(big)
    for level in schema.LEVELS:
        rows, distinct = db.execute(f"SELECT count(*), count(DISTINCT gid_{level}) FROM {SCHEMA}.adm_{level}").fetchone()
        assert rows == distinct == stats["levels"][str(level)]["features"]
    left = db.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", (f"{SCHEMA}_stg_%",)).fetchone()[0]
    assert left == 0, "the killed run's staging schema was not cleaned up"


def test_two_concurrent_runs_serialise_on_the_target(db, levels_sample, tmp_path):
    conf = f'{{"source": "{levels_sample / schema.LEVELS_FILE}", "schema": "faults_concurrent", "force": true}}'
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_dags_test(conf, log) for log in logs]
    codes = [p.wait(timeout=600) for p in procs]
    text = [log.read_text() for log in logs]
    assert codes == [0, 0] and all("state=success" in t for t in text)
    assert all("holding the publish lock on schema faults_concurrent" in t for t in text)
    stats = sample_stats(levels_sample)
    for level in schema.LEVELS:
        rows, distinct = db.execute(
            f"SELECT count(*), count(DISTINCT gid_{level}) FROM faults_concurrent.adm_{level}").fetchone()
        assert rows == distinct == stats["levels"][str(level)]["features"]


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="restarts the shared PostgreSQL: CI only")
def test_database_restart_mid_load_is_retried(db, dsn, levels_sample, tmp_path):
    big = sample("levels", 0.01)
    conf = f'{{"source": "{big / schema.LEVELS_FILE}", "schema": "faults_restart", "batch_rows": 200, "force": true}}'
    proc = _dags_test(conf, tmp_path / "restart.log")
    assert _wait_for_copy(db)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart", "-m", "fast"], check=True)
    assert proc.wait(timeout=600) == 0
    text = (tmp_path / "restart.log").read_text()
    assert "state=success" in text and "up_for_retry" in text.lower()
    with psycopg.connect(dsn, autocommit=True) as conn:
        stats = sample_stats(big)
        for level in schema.LEVELS:
            rows = conn.execute(f"SELECT count(*) FROM faults_restart.adm_{level}").fetchone()[0]
            assert rows == stats["levels"][str(level)]["features"]


# --- credentials and privileges -----------------------------------------------------------------

def test_credentials_never_reach_the_logs_and_the_role_is_not_superuser(db, levels_sample):
    password = (ROOT / "var" / "secrets.env").read_text().split("GADM_DB_PASSWORD=")[1].split()[0]
    conf = f'{{"source": "{levels_sample / schema.LEVELS_FILE}", "schema": "faults_logs", "levels": [0], "force": true}}'
    run = subprocess.run([str(ROOT / "bin" / "airflow"), "dags", "test", "gadm_load", "-c", conf],
                         capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert run.returncode == 0
    assert password not in run.stdout + run.stderr
    logs_dir = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    for f in logs_dir.rglob("*.log") if logs_dir.exists() else []:
        assert password not in f.read_text(errors="ignore"), f
    assert db.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                      "WHERE rolname = current_user").fetchone() == (False, False, False)
