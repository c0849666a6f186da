"""The CeleryExecutor stack, for real: `bin/stack up` starts it, the REST API drives it.

Runs of `gadm_load` are triggered with `POST /api/v2/dags/gadm_load/dagRuns`, as a user does,
and executed by two Celery workers through Redis. Checked: the run's outcome, which worker ran
each task instance, the benchmark XComs read back over REST, the PostGIS contract, a worker
killed with SIGKILL in the middle of a COPY, and a source that does not exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse

import httpx
import psycopg
import pytest
from psycopg import sql

from conftest import ROOT, live_fingerprint, sample, sample_stats
from gadm_airflow import schema
from test_e2e import check_contract

STACK = ROOT / "var" / "stack"
API = "http://127.0.0.1:8080"
DAG = "gadm_load"
SCHEMA, KILL_SCHEMA = "stack_test", "stack_kill"
WORKERS = {"worker1", "worker2"}
RUN_TIMEOUT = 900  # only to stop a stuck run from hanging CI; nothing asserts durations
# Documented in README.md ("Benchmark XComs").
LOAD_KEYS = {"level", "layer", "engine", "rows_in", "rows_out", "repaired", "promoted", "null_geometries",
             "bytes", "seconds", "peak_rss_mb", "load_peak_rss_mb", "rows_loaded", "attribute_checksum"}
REPORT_KEYS = {"engine", "source", "source_sha256", "levels", "total", "link_seconds",
               "verify_seconds", "publish_seconds"}
REPORT_LEVEL_KEYS = {"level", "rows", "seconds", "total_seconds", "rows_per_s", "mb_per_s", "peak_rss_mb"}


def bin_stack(*args: str) -> subprocess.CompletedProcess:
    # Scheduled runs would queue ahead of the tests' runs (max_active_runs=1).
    env = {**os.environ, "GADM_LOAD_SCHEDULE": "none"}
    return subprocess.run([str(ROOT / "bin" / "stack"), *args], env=env, check=True, timeout=900,
                          capture_output=True, text=True)


class Api:
    """The stack's REST API as the admin user (SimpleAuthManager, POST /auth/token)."""

    def __init__(self) -> None:
        passwords = STACK / "airflow" / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        token = httpx.post(f"{API}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        token.raise_for_status()
        self.http = httpx.Client(base_url=f"{API}/api/v2/dags/{DAG}", timeout=60,
                                 headers={"Authorization": f"Bearer {token.json()['access_token']}"})

    def get(self, path: str, **params) -> dict:
        r = self.http.get(path, params=params)
        r.raise_for_status()
        return r.json()

    def trigger(self, conf: dict) -> str:
        r = self.http.post("/dagRuns", json={"logical_date": None, "conf": conf})
        r.raise_for_status()
        return urllib.parse.quote(r.json()["dag_run_id"], safe="")

    def state(self, run: str) -> str:
        return self.get(f"/dagRuns/{run}")["state"]

    def wait(self, run: str) -> str:
        deadline = time.monotonic() + RUN_TIMEOUT
        while (state := self.state(run)) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run {run} still {state} after {RUN_TIMEOUT}s"
            time.sleep(3)
        return state

    def task_instances(self, run: str) -> list[dict]:
        return self.get(f"/dagRuns/{run}/taskInstances", limit=100)["task_instances"]

    def xcom(self, run: str, task_id: str, map_index: int = -1):
        return self.get(f"/dagRuns/{run}/taskInstances/{task_id}/xcomEntries/return_value",
                        map_index=map_index)["value"]

    def xcoms(self, run: str) -> dict:
        """Every successful task's return value, shaped like conftest.run_dag's."""
        out: dict = {}
        for ti in self.task_instances(run):
            if ti["state"] != "success":
                continue
            value = self.xcom(run, ti["task_id"], ti["map_index"])
            if ti["map_index"] >= 0:
                out.setdefault(ti["task_id"], {})[ti["map_index"]] = value
            else:
                out[ti["task_id"]] = value
        return out

    def log(self, run: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        r = self.http.get(f"/dagRuns/{run}/taskInstances/{task_id}/logs/{try_number}",
                          params={"map_index": map_index}, headers={"Accept": "application/json"})
        r.raise_for_status()
        return "\n".join(json.dumps(line) for line in r.json()["content"])


def drop_schemas(db, *names: str) -> None:
    for name in names:
        for (nsp,) in db.execute("SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s",
                                 (name, name.replace("_", r"\_") + r"\_%")).fetchall():
            db.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(nsp)))


def process_tree(root: int) -> set[int]:
    """`root` and all its descendants."""
    ps = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True)
    children: dict[int, list[int]] = {}
    for pid, ppid in (map(int, line.split()) for line in ps.stdout.splitlines()):
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


def worker_of(ti: dict) -> str:
    """The stack's worker name from a task instance's hostname (`worker1@host`)."""
    match = re.fullmatch(r"(worker\d+)@.+", ti["hostname"] or "")
    assert match, f"{ti['task_id']}[{ti['map_index']}] ran on {ti['hostname']!r}, not a stack Celery worker"
    return match.group(1)


@pytest.mark.parametrize("env, slots", [
    ({"GADM_MEM_AVAILABLE_MB": "22000", "GADM_STACK_RESERVE_MB": "2048", "GADM_TASK_PEAK_MB": "1024"}, 19),
    ({"GADM_MEM_AVAILABLE_MB": "3000", "GADM_STACK_RESERVE_MB": "2048", "GADM_TASK_PEAK_MB": "1024"}, 1),
    ({"GADM_MEM_AVAILABLE_MB": "1000", "GADM_STACK_RESERVE_MB": "2048", "GADM_TASK_PEAK_MB": "1024"}, 1),
    ({"GADM_MEM_AVAILABLE_MB": "22000", "GADM_HEAVY_POOL_SLOTS": "3"}, 3),
])
def test_memory_rule_sizes_the_heavy_pool(env, slots):
    out = subprocess.run([str(ROOT / "deploy" / "pool-slots.sh")], env={"PATH": os.environ["PATH"], **env},
                         capture_output=True, text=True, check=True)
    assert int(out.stdout) == slots


def test_task_instances_record_the_celery_node_name(monkeypatch):
    import socket
    import sys

    monkeypatch.syspath_prepend(str(ROOT / "deploy"))
    import worker_hostname

    host = socket.gethostname()
    monkeypatch.setattr(sys, "argv", ["airflow", "celery", "worker", "-H", "worker2@%h", "-q", "default"])
    assert worker_hostname.get_hostname() == f"worker2@{host}"
    monkeypatch.setattr(sys, "argv", ["airflow", "api-server", "-H", "127.0.0.1"])
    assert "@" not in worker_hostname.get_hostname()


@pytest.fixture(scope="module")
def pg(dsn):
    """The GADM target as the `gadm` role, for the whole module."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def stack(pg):
    """A fresh stack (whatever ran before is stopped first), stopped again after the module."""
    drop_schemas(pg, SCHEMA, KILL_SCHEMA)
    bin_stack("down")
    up = bin_stack("up")
    assert "healthy: 2 Celery workers" in up.stdout, up.stdout
    assert f"{API} (user admin, password " in up.stdout, up.stdout
    yield Api()
    bin_stack("down")
    assert not list((STACK / "run").glob("*.pid")), "bin/stack down left pid files"


@pytest.fixture(scope="module")
def published(stack):
    """One run of a small sample through the workers into SCHEMA."""
    folder = sample("levels", 0.01)
    source = folder / schema.LEVELS_FILE
    run = stack.trigger({"source": str(source), "schema": SCHEMA})
    state = stack.wait(run)
    return {"run": run, "state": state, "source": source, "stats": sample_stats(folder)}


def test_run_is_executed_by_both_celery_workers(stack, published):
    assert published["state"] == "success"
    tis = stack.task_instances(published["run"])
    assert {ti["state"] for ti in tis} == {"success"}, [(t["task_id"], t["map_index"], t["state"]) for t in tis]
    assert len([ti for ti in tis if ti["task_id"] == "level.load"]) == 6
    assert {worker_of(ti) for ti in tis} == WORKERS
    heavy = {ti["pool"] for ti in tis if ti["task_id"] in ("level.preprocess", "level.load")}
    assert heavy == {"gadm_heavy"}
    assert stack.http.get(f"{API}/api/v2/pools/gadm_heavy").json()["slots"] >= 1


def test_benchmark_xcoms_and_contract_over_rest(stack, published, pg):
    xcoms = stack.xcoms(published["run"])
    for value in xcoms["level.load"].values():
        assert LOAD_KEYS <= set(value), LOAD_KEYS - set(value)
    report = xcoms["report"]
    assert REPORT_KEYS <= set(report), REPORT_KEYS - set(report)
    assert all(REPORT_LEVEL_KEYS <= set(r) for r in report["levels"])
    assert report["source_sha256"] and report["total"]["rows"] > 0
    # counts = stats.json, attributes = source, valid MultiPolygons, parent FKs, indexes
    check_contract(pg, SCHEMA, published["source"], published["stats"], xcoms)


def test_bad_source_fails_in_resolve_and_leaves_published_data(stack, published, pg):
    assert published["state"] == "success"
    before = live_fingerprint(pg, SCHEMA)
    missing = ROOT / "data" / "test" / "no-such-sample" / schema.LEVELS_FILE
    run = stack.trigger({"source": str(missing), "schema": SCHEMA})
    assert stack.wait(run) == "failed"
    tis = {(ti["task_id"], ti["map_index"]): ti for ti in stack.task_instances(run)}
    resolve = tis[("resolve_source", -1)]
    assert resolve["state"] == "failed"
    worker_of(resolve)
    log = stack.log(run, "resolve_source", resolve["try_number"])
    assert "no such file or directory" in log and str(missing) in log, log[-2000:]
    for task_id in ("link", "verify", "publish", "report"):
        ti = tis[(task_id, -1)]
        assert (ti["state"], ti["try_number"], ti["hostname"] or None) == ("upstream_failed", 0, None), ti
    assert live_fingerprint(pg, SCHEMA) == before


def _copy_in_progress(pg, target: str) -> str | None:
    """The level table a COPY into the staging of `target` is writing right now, if any."""
    for (query,) in pg.execute("SELECT query FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY %'"):
        match = re.search(rf'"{re.escape(target)}[^"]*"\."(adm_\d)"', query)
        if match:
            return match.group(1)
    return None


def signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def test_sigkill_of_a_worker_during_a_copy_is_retried_to_one_complete_copy(stack, pg):
    folder = sample("levels", 0.01, seed=8)
    stats = sample_stats(folder)
    leaders = {w: int((STACK / "run" / f"{w}.pid").read_text().split()[0]) for w in WORKERS}
    run = stack.trigger({"source": str(folder / schema.LEVELS_FILE), "schema": KILL_SCHEMA})
    deadline = time.monotonic() + RUN_TIMEOUT
    victim, polls = None, 0
    while victim is None:
        table = _copy_in_progress(pg, KILL_SCHEMA)
        if table is None:
            polls += 1
            if polls % 40 == 0:
                assert time.monotonic() < deadline and stack.state(run) not in ("success", "failed"), \
                    "no load task was caught copying"
            time.sleep(0.05)
            continue
        # Freeze both workers so the COPY cannot finish while we find whose it is.
        trees = {w: process_tree(leader) for w, leader in leaders.items()}
        for tree in trees.values():
            signal_all(tree, signal.SIGSTOP)
        if _copy_in_progress(pg, KILL_SCHEMA) == table:
            # Levels are mapped in order: map index n loads ADM_n (checked on the XCom below).
            loads = [ti for ti in stack.task_instances(run) if ti["task_id"] == "level.load"
                     and ti["state"] == "running" and ti["map_index"] == int(table[-1])]
            victim = loads[0] if loads else None
        if victim is None:
            for tree in trees.values():
                signal_all(tree, signal.SIGCONT)
    worker = worker_of(victim)
    assert victim["pid"] in trees[worker], f"task process {victim['pid']} is not under {worker}"
    # The whole worker dies at once: its process group and the task processes, which Airflow
    # puts in process groups of their own. The other worker carries on.
    os.killpg(leaders[worker], signal.SIGKILL)
    signal_all(trees[worker], signal.SIGKILL)
    for other in WORKERS - {worker}:
        signal_all(trees[other], signal.SIGCONT)

    assert stack.wait(run) == "success"
    tis = stack.task_instances(run)
    retried = next(ti for ti in tis if ti["task_id"] == "level.load" and ti["map_index"] == victim["map_index"])
    assert retried["try_number"] > victim["try_number"], "the killed load was not retried"
    assert worker_of(retried) != worker, "the retry ran on the dead worker"
    assert stack.xcom(run, "level.load", retried["map_index"])["layer"] == f"ADM_{table[-1]}"
    for level in schema.LEVELS:
        t = sql.Identifier(KILL_SCHEMA, schema.table_name(level))
        gid = sql.Identifier(schema.output_column(schema.gid_column(level)))
        rows, gids = pg.execute(sql.SQL("SELECT count(*), count(DISTINCT {}) FROM {}").format(gid, t)).fetchone()
        assert rows == gids == stats["levels"][str(level)]["features"], f"adm_{level}: {rows} rows, {gids} GIDs"
    bad = pg.execute(sql.SQL("SELECT count(*) FROM {} WHERE NOT ST_IsValid(geom)").format(
        sql.Identifier(KILL_SCHEMA, "adm_5"))).fetchone()[0]
    assert bad == 0
