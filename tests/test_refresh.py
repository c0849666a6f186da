"""Scheduled refreshes end to end: unchanged sources are skipped, changed ones reload.

Runs `gadm_load` in-process (`dag.test()`) into its own schema `refresh_test` and
checks the Airflow side (task states, Asset events) and the target database side
(`refresh_test_meta.load_runs`, `published_levels`, the derived `country_summary`).
"""

from __future__ import annotations

import shutil

import pytest
from psycopg import sql

from conftest import TEST_DATA, sample
from gadm_airflow import history, schema

SCHEMA = "refresh_test"
SCALE = 0.002


def run(dag, conf: dict):
    """Run `dag` in-process; return (run state, run id, {task_id: {states}}, report XCom or None)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag_run = dag.test(run_conf=conf)
    states: dict[str, set[str]] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id):
            states.setdefault(ti.task_id, set()).add(str(ti.state))
        report = session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id,
                                                    task_id="report", key="return_value").one_or_none()
        report = XComModel.deserialize_value(report) if report else None
    return str(dag_run.state), dag_run.run_id, states, report


def drop_schemas(conn, target: str) -> None:
    """Drop `target`, its history and every staging schema of its runs."""
    names = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) "
                                        "OR starts_with(nspname, %s)",
                                        ([target, history.meta_schema(target)], f"{target}_stg_"))]
    for name in names:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def asset_events(run_id: str) -> list[tuple[str, dict]]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return sorted((e.asset.uri, e.extra) for e in session.query(AssetEvent).filter_by(source_run_id=run_id))


@pytest.fixture(scope="module")
def source_file():
    """One path whose content the tests swap: sample seed 1, later seed 2."""
    folder = TEST_DATA / "refresh"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / schema.LEVELS_FILE
    shutil.copyfile(sample("levels", SCALE, seed=1) / schema.LEVELS_FILE, path)
    yield path
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def clean_schema(dsn):
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        drop_schemas(conn, SCHEMA)
        yield
        drop_schemas(conn, SCHEMA)


@pytest.fixture(scope="module")
def runs(gadm_dag, source_file, clean_schema):
    """first load; same source again; same again with force; changed content at the same path."""
    # every param the check depends on is explicit: in-process runs of one DAG object keep the
    # previous run's conf values as param defaults (Airflow's process_params updates them in place)
    conf = {"source": str(source_file), "schema": SCHEMA, "levels": [0, 1, 2], "force": False}
    out = {"first": run(gadm_dag, conf), "unchanged": run(gadm_dag, conf),
           "forced": run(gadm_dag, {**conf, "force": True})}
    shutil.copyfile(sample("levels", SCALE, seed=2) / schema.LEVELS_FILE, source_file)
    out["changed"] = run(gadm_dag, conf)
    return out


DOWNSTREAM = ("level.preprocess", "level.load", "link", "verify", "publish", "announce", "report")


def test_first_run_loads_and_publishes(runs):
    state, _, states, report = runs["first"]
    assert state == "success"
    assert all(states[t] == {"success"} for t in ("resolve_source", "check_source", *DOWNSTREAM)), states
    assert [lv["level"] for lv in report["levels"]] == [0, 1, 2]


def test_unchanged_source_is_skipped_not_failed(runs, db):
    state, run_id, states, report = runs["unchanged"]
    assert state == "success"
    assert states["resolve_source"] == {"success"} and states["check_source"] == {"success"}
    for task_id in DOWNSTREAM:  # link's none_failed rule must not let it run
        assert states[task_id] == {"skipped"}, (task_id, states[task_id])
    assert report is None and asset_events(run_id) == []
    row = db.execute(sql.SQL("SELECT status, total_rows FROM {}.load_runs WHERE run_id = %s").format(
        sql.Identifier(history.meta_schema(SCHEMA))), (run_id,)).fetchone()
    assert row == ("unchanged", None)


def test_force_and_changed_source_reload(runs, db):
    meta = sql.Identifier(history.meta_schema(SCHEMA))
    for key in ("forced", "changed"):
        state, run_id, states, report = runs[key]
        assert state == "success" and all(states[t] == {"success"} for t in DOWNSTREAM), (key, states)
    # the live tables now come from the changed file, and hold its rows
    _, changed_id, _, report = runs["changed"]
    published = db.execute(sql.SQL("SELECT level, run_id, rows, source_identity->>'sha256' FROM "
                                   "{}.published_levels ORDER BY level").format(meta)).fetchall()
    assert [(lv, rid) for lv, rid, _, _ in published] == [(0, changed_id), (1, changed_id), (2, changed_id)]
    assert {sha for *_, sha in published} == {report["source_sha256"]}
    assert report["source_sha256"] != runs["first"][3]["source_sha256"]
    for level, _, rows, _ in published:
        live = db.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(SCHEMA), sql.Identifier(schema.table_name(level)))).fetchone()[0]
        assert rows == live == next(lv["rows"] for lv in report["levels"] if lv["level"] == level)


def test_asset_event_for_each_published_table(runs):
    for key in ("first", "forced", "changed"):
        _, run_id, _, _ = runs[key]
        assert asset_events(run_id) == [
            (f"postgres://127.0.0.1:5432/gadm/{SCHEMA}/adm_{n}", {"run_id": run_id}) for n in (0, 1, 2)]


def test_load_runs_has_a_row_per_run(runs, db):
    rows = db.execute(sql.SQL("SELECT run_id, status, engine, total_rows, levels, source_identity->>'sha256' "
                              "FROM {}.load_runs").format(sql.Identifier(history.meta_schema(SCHEMA)))).fetchall()
    by_id = {r[0]: r[1:] for r in rows}
    assert len(rows) == 4 and set(by_id) == {runs[k][1] for k in runs}
    for key in ("first", "forced", "changed"):
        _, run_id, _, report = runs[key]
        status, engine, total_rows, levels, sha = by_id[run_id]
        assert (status, engine, total_rows, sha) == ("published", "geopandas", report["total"]["rows"],
                                                     report["source_sha256"])
        assert levels == report["levels"]  # the per-level figures, as in the report XCom


def test_example_dag_rebuilds_the_derived_table(runs, db):
    from airflow.dag_processing.dagbag import DagBag

    from conftest import ROOT

    dag = DagBag(dag_folder=str(ROOT / "dags" / "gadm_refresh_example.py")).get_dag("gadm_refresh_example")
    state, _, states, _ = run(dag, {"schema": SCHEMA})
    assert state == "success", states
    got = db.execute(sql.SQL("SELECT gid_0, adm_1_units, adm_2_units FROM {}.country_summary ORDER BY 1").format(
        sql.Identifier(SCHEMA))).fetchall()
    expected = db.execute(sql.SQL(
        "SELECT a.gid_0, (SELECT count(*) FROM {s}.adm_1 b WHERE b.gid_0 = a.gid_0), "
        "(SELECT count(*) FROM {s}.adm_2 c WHERE c.gid_0 = a.gid_0) FROM {s}.adm_0 a ORDER BY 1").format(
        s=sql.Identifier(SCHEMA))).fetchall()
    assert got == expected and sum(r[2] for r in got) == runs["changed"][3]["levels"][2]["rows"]
