"""Shared fixtures: the real PostGIS database, generated samples, DAG runs.

Run through `bin/test` (or `make test`), which sets the project environment
(AIRFLOW_HOME, PYTHONPATH, GADM_* dirs) after `bin/setup` started the services.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(os.environ.get("GADM_DATA_DIR", ROOT / "data")) / "test"


def _secrets() -> dict[str, str]:
    path = ROOT / "var" / "secrets.env"
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


@pytest.fixture(scope="session")
def dsn() -> str:
    """The target database as the least-privileged `gadm` role (never a superuser)."""
    return (f"postgresql://gadm:{_secrets()['GADM_DB_PASSWORD']}@127.0.0.1:5432/gadm")


@pytest.fixture()
def db(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def sample(layout: str, scale: float, seed: int = 7) -> Path:
    """A generated GADM-shaped sample, cached under data/test/ across test runs."""
    from gadm_airflow.synth import generate

    folder = TEST_DATA / f"{layout}-{scale}-{seed}"
    if not (folder / "stats.json").exists():
        generate(folder, scale=scale, seed=seed, layout=layout)
    return folder


def sample_stats(folder: Path) -> dict:
    return json.loads((folder / "stats.json").read_text())


@pytest.fixture(scope="session")
def gadm_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("gadm_load")
    DEFAULT_PARAMS[dag.dag_id] = dag.params.dump()
    return dag


# Each DAG's param defaults as parsed, before any run (see run_dag).
DEFAULT_PARAMS: dict[str, dict] = {}


def run_dag(dag, conf: dict, with_states: bool = False):
    """Run `dag` in-process with `dag.test()`; return the run state and its XComs by task.

    XComs: {task_id: value} for unmapped tasks, {task_id: {map_index: value}} for mapped ones.
    With `with_states`, also {task_id: {state, ...}} and {task_id: max try_number}.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    # dag.test() writes each run's conf into the DAG's Param objects in place, so one test's
    # params would become the next one's defaults: run a copy, with every param given.
    dag = copy.deepcopy(dag)
    run = dag.test(run_conf={**DEFAULT_PARAMS.get(dag.dag_id, {}), **conf})
    values: dict = {}
    states: dict = {}
    tries: dict = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run.run_id):
            states.setdefault(ti.task_id, set()).add(str(ti.state))
            tries[ti.task_id] = max(tries.get(ti.task_id, 0), ti.try_number or 0)
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, key="return_value"))
        for row in rows:
            value = XComModel.deserialize_value(row)
            if row.map_index >= 0:
                values.setdefault(row.task_id, {})[row.map_index] = value
            else:
                values[row.task_id] = value
    if with_states:
        return str(run.state), values, states, tries
    return str(run.state), values


def live_fingerprint(db, schema_name: str) -> list[tuple]:
    """Per table of a schema: row count and an md5 over every row (ids, attributes, geometry)."""
    out = []
    for (name,) in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema_name,)):
        t = f'"{schema_name}"."{name}"'
        out.append((name, *db.execute(
            f"SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) FROM {t} t").fetchone()))
    return out
