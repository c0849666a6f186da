"""Every DAG file imports cleanly and follows the house rules."""

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def bag():
    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(bag):
    assert bag.import_errors == {}
    assert "gadm_load" in bag.dag_ids


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_each_file_defines_tagged_dags_with_retries(bag, dag_file):
    dags = [d for d in bag.dags.values() if Path(d.fileloc).name == dag_file]
    assert dags, f"{dag_file} defines no DAG"
    for dag in dags:
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md, f"{dag.dag_id} has no doc_md"
        assert not dag.catchup
        for task in dag.tasks:
            assert task.retries is not None


def test_gadm_load_shape(bag):
    dag = bag.get_dag("gadm_load")
    ids = set(dag.task_ids)
    assert {"resolve_source", "level.preprocess", "level.load", "link", "verify", "publish", "report"} <= ids
    # the per-level tasks are mapped, named by level in the UI
    for task_id in ("level.preprocess", "level.load"):
        task = dag.get_task(task_id)
        assert task.map_index_template and "level_label" in task.map_index_template
    assert dag.get_task("level.preprocess").downstream_task_ids == {"level.load"}
    link = dag.get_task("link")
    assert link.trigger_rule == "none_failed"
    assert "level.load" in link.upstream_task_ids
    assert dag.get_task("publish").upstream_task_ids >= {"verify", "link"}
    assert dag.max_active_runs == 1
    # no cycles: a topological sort covers every task
    assert len(dag.topological_sort()) == len(dag.tasks)


def test_gadm_load_params_schema(bag):
    params = bag.get_dag("gadm_load").params
    assert set(params.keys()) >= {"source", "levels", "engine", "schema", "postgres_conn_id", "batch_rows"}
    assert params.get_param("engine").schema["enum"] == ["geopandas", "sedonadb"]
    assert params.get_param("schema").value == "gadm"
    assert params.get_param("postgres_conn_id").value == "gadm_postgis"
    levels = params.get_param("levels").schema
    assert levels["items"]["minimum"] == 0 and levels["items"]["maximum"] == 5
