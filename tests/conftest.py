"""Shared fixtures: the real PostGIS database, generated samples, DAG runs.

Run through `bin/test` (or `make test`), which sets the project environment
(AIRFLOW_HOME, PYTHONPATH, GADM_* dirs) after `bin/setup` started the services.
"""

from __future__ import annotations

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


def sample(layout: str, scale: float, seed: int = 7, **options) -> Path:
    """A generated GADM-shaped sample, cached under data/test/ across test runs."""
    from gadm_airflow.synth import generate

    folder = TEST_DATA / f"{layout}-{scale}-{seed}" + ("-" + "-".join(f"{k}{v}" for k, v in sorted(options.items())) if options else "")
    stats = folder / "stats.json"
    if not stats.exists():
        generate(folder, scale=scale, seed=seed, layout=layout, **options)
    return folder


def sample_stats(folder: Path) -> dict:
    return json.loads((folder / "stats.json").read_text())


@pytest.fixture(scope="session")
def gadm_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("gadm_load")


def run_dag(dag, conf: dict) -> tuple[str, dict]:
    """Run `dag` in-process with `dag.test()`; return the run state and its XComs by task.

    XComs: {task_id: value} for unmapped tasks, {task_id: {map_index: value}} for mapped ones.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = dag.test(run_conf=conf)
    values: dict = {}
    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, key="return_value"))
        for row in rows:
            value = XComModel.deserialize_value(row)
            if row.map_index >= 0:
                values.setdefault(row.task_id, {})[row.map_index] = value
            else:
                values[row.task_id] = value
    return str(run.state), values
