"""
### gadm_load: GADM administrative boundaries into PostGIS

```
resolve_source ──► [ per level: preprocess ──► load ] ──► link ──► verify ──► publish ──► report
                      (mapped, depth-first)
```

1. **resolve_source** finds the source (file, folder, .zip or http(s) URL), detects the
   GADM layout (levels file, single `gadm_410` layer, per-country files) and plans one spec
   per level present.
2. **preprocess** (per level) streams the layer in bounded batches, turns GADM's `"NA"`
   into NULL, repairs invalid geometries, promotes to MultiPolygon, computes stable ids and
   writes a GeoParquet intermediate. **load** COPYs it into a staging table and indexes it.
3. **link** adds `parent_id` foreign keys level by level and reports orphans;
   **verify** reconciles staged rows with the source; **publish** swaps the staged tables
   into the live schema in one transaction; **report** returns the benchmark summary.

Params: `source` (path or URL; default the bundled sample), `levels` (subset of 0..5;
default all present), `engine` (`geopandas` or `sedonadb`), `schema` (target schema,
default `gadm`), `postgres_conn_id` (default `gadm_postgis`), `batch_rows` (features
per batch, bounds memory).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task, task_group

from gadm_airflow import pipeline

DEFAULT_ARGS = {
    "owner": "gadm-airflow",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=5),
}

PARAMS = {
    "source": Param(None, type=["null", "string"], title="Source",
                    description="GADM file, folder, .zip or http(s) URL. Empty: the bundled sample.",
                    examples=["/data/gadm_410-levels.gpkg",
                              "https://geodata.ucdavis.edu/gadm/gadm4.1/gadm_410-levels.zip"]),
    "levels": Param(None, type=["null", "array"], items={"type": "integer", "minimum": 0, "maximum": 5},
                    uniqueItems=True, minItems=1, title="Levels",
                    description="GADM levels to load (0 = countries ... 5). Empty: every level in the source."),
    "engine": Param("geopandas", type="string", enum=["geopandas", "sedonadb"], title="Engine",
                    description="Preprocessing engine."),
    "schema": Param("gadm", type="string", pattern="^[a-z_][a-z0-9_]{0,47}$", title="Target schema",
                    description="PostgreSQL schema that receives adm_0 .. adm_5."),
    "postgres_conn_id": Param("gadm_postgis", type="string", minLength=1, title="Target connection",
                              description="Airflow connection id of the PostGIS database."),
    "batch_rows": Param(2000, type="integer", minimum=100, maximum=200_000, title="Batch rows",
                        description="Features per read/COPY batch; bounds each task's memory."),
}


@dag(
    dag_id="gadm_load",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["gadm", "postgis"],
    doc_md=__doc__,
)
def gadm_load():
    @task(retries=0)
    def resolve_source() -> list[dict]:
        ctx = get_current_context()
        return pipeline.resolve_source(dict(ctx["params"]), ctx["run_id"])

    @task_group(group_id="level")
    def level(item: dict):
        @task(map_index_template="{{ level_label }}", multiple_outputs=False)
        def preprocess(item: dict) -> dict:
            ctx = get_current_context()
            ctx["level_label"] = f"ADM_{item['spec']['level']}"
            return pipeline.preprocess_level(item, ctx["run_id"])

        @task(map_index_template="{{ level_label }}", multiple_outputs=False)
        def load(pre: dict, item: dict) -> dict:
            get_current_context()["level_label"] = pre["layer"]
            return pipeline.load_level(pre, item)

        return load(preprocess(item), item)

    @task(trigger_rule="none_failed", multiple_outputs=False)
    def link(plan: list, results: list) -> dict:
        return pipeline.link_levels(list(plan), list(results))

    @task(multiple_outputs=False)
    def verify(plan: list, linked: dict) -> dict:
        return pipeline.verify_levels(list(plan), linked)

    @task(multiple_outputs=False)
    def publish(plan: list, linked: dict, verified: dict) -> dict:
        return pipeline.publish_levels(list(plan), linked)

    @task(multiple_outputs=False)
    def report(plan: list, linked: dict, verified: dict, published: dict) -> dict:
        run_id = get_current_context()["run_id"]
        return pipeline.report_run(list(plan), linked, verified, published, run_id)

    plan = resolve_source()
    loaded = level.expand(item=plan)
    linked = link(plan, loaded)
    verified = verify(plan, linked)
    published = publish(plan, linked, verified)
    report(plan, linked, verified, published)


gadm_load()
