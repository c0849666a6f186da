"""
### gadm_load: GADM administrative boundaries into PostGIS

```
resolve_source ─► check_source ─► [ per level: preprocess ─► load ] ─► link ─► verify ─► publish ─┬► announce
                                    (mapped, named ADM_n, depth-first)                              └► report
```

1. **resolve_source** finds the source (file, folder, .zip or http(s) URL), detects the
   GADM layout (levels file, single `gadm_410` layer, per-country files) and plans one spec
   per level present. **check_source** compares the source's identity (checksum; ETag /
   Last-Modified for URLs) with the one the live tables were published from (kept in
   `<schema>_meta.published_levels`): if nothing changed the run logs
   "unchanged since <date>, nothing to do" and every later task is *skipped* (the run
   succeeds). `force` reloads anyway.
2. **preprocess** (per level) streams the layer in bounded batches, turns GADM's `"NA"`
   into NULL, repairs invalid geometries, promotes to MultiPolygon, computes stable ids and
   writes a GeoParquet intermediate. **load** COPYs it into a staging table and indexes it.
3. **link** adds `parent_id` foreign keys level by level and reports orphans;
   **verify** reconciles staged rows with the source; **publish** swaps the staged tables
   into the live schema in one transaction; **announce** records each table's source identity
   and emits one Asset event per published table (`postgres://host:port/db/schema/adm_N`,
   through the `gadm_published` alias); **report** returns the benchmark summary, writes
   it to `<schema>_meta.load_runs` and draws it as a PNG in the report folder.

Params: `source` (path or URL; default the bundled sample), `levels` (subset of 0..5;
default all present), `engine` (`geopandas` or `sedonadb`), `schema` (target schema,
default `gadm`), `postgres_conn_id` (default `gadm_postgis`), `batch_rows` (features
per batch, bounds memory), `force` (reload even if the source is unchanged).

Schedule: `GADM_LOAD_SCHEDULE` (cron or preset; default `@monthly`; `none` for manual
only). Scheduled runs use the defaults above and usually end at check_source.
The **GADM loads** page (Browse menu) shows the latest load per level, a chart of the
last runs and a map of each level.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import Asset, AssetAlias, Param, dag, get_current_context, task, task_group

from gadm_airflow import assets


def _pipeline():
    """The task bodies, imported when a task runs rather than at every parse of this file
    (they pull in pyogrio, pyarrow and psycopg: 0.7 s the dag-processor need not pay)."""
    from gadm_airflow import pipeline

    return pipeline


SCHEDULE = os.environ.get("GADM_LOAD_SCHEDULE", "@monthly")
PUBLISHED = AssetAlias(assets.PUBLISHED_ALIAS)
LEVEL_NAMES = {"0": "ADM_0 countries", "1": "ADM_1 states, provinces", "2": "ADM_2 districts, counties",
               "3": "ADM_3 municipalities", "4": "ADM_4 communes, wards", "5": "ADM_5 villages, cells"}

DEFAULT_ARGS = {
    "owner": "gadm-airflow",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=5),
}

# Per-level preprocess/load are the memory-heavy tasks: on the stack they share the pool the
# memory rule sizes (docs/stack.md). Unset, they use the default pool and queue.
HEAVY = {"pool": os.environ.get("GADM_HEAVY_POOL") or "default_pool",
         **({"queue": q} if (q := os.environ.get("GADM_HEAVY_QUEUE")) else {})}

PARAMS = {
    "source": Param(None, type=["null", "string"], minLength=1, maxLength=2000, title="Source",
                    description="GADM file, folder, .zip or http(s) URL (a local path must lie in "
                                "GADM_ALLOWED_ROOTS). Empty: the bundled sample.",
                    examples=["/data/gadm_410-levels.gpkg",
                              "https://geodata.ucdavis.edu/gadm/gadm4.1/gadm_410-levels.zip"]),
    # The form's multi-select sends strings: "0".."5" are accepted as well as 0..5.
    "levels": Param(None, type=["null", "array"],
                    items={"type": ["integer", "string"], "enum": [*range(6), *LEVEL_NAMES],
                           "minimum": 0, "maximum": 5},
                    uniqueItems=True, minItems=1, maxItems=6, title="Levels",
                    examples=list(LEVEL_NAMES), values_display=LEVEL_NAMES,
                    description="GADM levels to load. Empty: every level present in the source."),
    "engine": Param("geopandas", type="string", enum=["geopandas", "sedonadb"], title="Engine",
                    values_display={"geopandas": "GeoPandas (pyogrio + shapely)",
                                    "sedonadb": "SedonaDB (Rust, Arrow-native)"},
                    description="Preprocessing engine: same output, different speed and memory."),
    "schema": Param("gadm", type="string", pattern="^[a-z_][a-z0-9_]{0,47}$", title="Target schema",
                    description="PostgreSQL schema that receives adm_0 .. adm_5 (lower-case, at most 48 "
                                "characters); its history lives in <schema>_meta."),
    "postgres_conn_id": Param("gadm_postgis", type="string", pattern=r"^[A-Za-z0-9_.\-]{1,250}$",
                              title="Target connection",
                              description="Airflow connection id of the PostGIS database."),
    "batch_rows": Param(2000, type="integer", minimum=100, maximum=200_000, title="Batch rows",
                        description="Features per read/COPY batch (100 .. 200000); bounds each task's memory."),
    "force": Param(False, type="boolean", title="Force reload",
                   description="Reload even if the source is unchanged since the last publish."),
}


@dag(
    dag_id="gadm_load",
    schedule=None if SCHEDULE.lower() in ("", "none") else SCHEDULE,
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
        return _pipeline().resolve_source(dict(ctx["params"]), ctx["run_id"])

    @task.short_circuit()  # idempotent: retried like the rest
    def check_source(plan: list) -> list:
        """An empty plan (source unchanged, no force) skips every later task."""
        ctx = get_current_context()
        return _pipeline().check_source(list(plan), bool(ctx["params"].get("force")), ctx["run_id"])

    @task_group(group_id="level")
    def level(item: dict):
        @task(map_index_template="{{ level_label }}", multiple_outputs=False, **HEAVY)
        def preprocess(item: dict) -> dict:
            ctx = get_current_context()
            ctx["level_label"] = f"ADM_{item['spec']['level']}"
            return _pipeline().preprocess_level(item, ctx["run_id"])

        @task(map_index_template="{{ level_label }}", multiple_outputs=False, **HEAVY)
        def load(pre: dict, item: dict) -> dict:
            get_current_context()["level_label"] = f"ADM_{item['spec']['level']}"
            return _pipeline().load_level(pre, item)

        return load(preprocess(item), item)

    @task(trigger_rule="none_failed", multiple_outputs=False)
    def link(plan: list, results: list) -> dict:
        return _pipeline().link_levels(list(plan), results)

    @task(multiple_outputs=False)
    def verify(plan: list, linked: dict) -> dict:
        return _pipeline().verify_levels(list(plan), linked)

    @task(multiple_outputs=False)
    def publish(plan: list, linked: dict, verified: dict) -> dict:
        return _pipeline().publish_levels(list(plan), linked)

    @task(outlets=[PUBLISHED])
    def announce(plan: list, linked: dict, published: dict) -> list:
        """Record each published table's source identity; one Asset event per table."""
        ctx = get_current_context()
        uris = _pipeline().record_published(list(plan), linked, ctx["run_id"])
        for uri in uris:
            ctx["outlet_events"][PUBLISHED].add(Asset(uri), extra={"run_id": ctx["run_id"]})
        return uris

    @task(multiple_outputs=False)
    def report(plan: list, linked: dict, verified: dict, published: dict) -> dict:
        run_id = get_current_context()["run_id"]
        summary = _pipeline().report_run(list(plan), linked, verified, published, run_id)
        _pipeline().record_report(list(plan), summary, run_id)
        return summary

    plan = check_source(resolve_source())
    loaded = level.expand(item=plan)
    linked = link(plan, loaded)
    verified = verify(plan, linked)
    published = publish(plan, linked, verified)
    announce(plan, linked, published)
    report(plan, linked, verified, published)


gadm_load()
