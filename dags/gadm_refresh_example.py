"""
### gadm_refresh_example: rebuild a derived table after every GADM publish

Scheduled on the `gadm_published` asset alias: each time `gadm_load` publishes, it emits
one Asset event per level table (`postgres://host:port/db/<schema>/adm_N`), and this DAG
runs once for them. It rebuilds `<schema>.country_summary` (per country: the number of
units at each published level) for every schema named in the triggering events.

Use it as a template for your own consumers: schedule on the alias (any schema, any
level) or on one concrete `Asset("postgres://.../gadm/adm_2")`.

Param `schema`: a schema to refresh when triggered by hand (no asset events).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetAlias, Param, dag, get_current_context, task

from gadm_airflow import assets, db, derived


@dag(
    dag_id="gadm_refresh_example",
    schedule=[AssetAlias(assets.PUBLISHED_ALIAS)],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "gadm-airflow", "retries": 2, "retry_delay": dt.timedelta(seconds=30)},
    params={"schema": Param(None, type=["null", "string"], pattern="^[a-z_][a-z0-9_]{0,47}$",
                            title="Schema", description="Schema to refresh on a manual run.")},
    tags=["gadm", "postgis", "example"],
    doc_md=__doc__,
)
def gadm_refresh_example():
    @task(multiple_outputs=False)
    def refresh_country_summary() -> dict:
        ctx = get_current_context()
        events = ctx.get("triggering_asset_events") or {}
        schemas = {assets.parse_uri(event.asset.uri)[0] for key in events for event in events[key]}
        if ctx["params"].get("schema"):
            schemas.add(ctx["params"]["schema"])
        if not schemas:
            raise ValueError("no triggering asset events and no 'schema' param: nothing to refresh")
        with db.connect_conn_id("gadm_postgis") as conn:
            return {s: derived.refresh_country_summary(conn, s) for s in sorted(schemas)}

    refresh_country_summary()


gadm_refresh_example()
