"""The "GADM loads" page: an Airflow 3 plugin served by the api-server.

A small FastAPI app mounted at ``/gadm`` (listed in the UI's Browse menu as an
external view) shows, for one target schema: the latest load per level, the
last runs, a chart of load time and rows/s per level across those runs and a
map thumbnail of each published level, all read from the target database
(`gadm_airflow.history`, `gadm_airflow.charts`). Every route needs a logged-in
user allowed to read gadm_load's runs, like the rest of the UI (the JWT
cookie the UI sets, or a bearer token).

Settings: ``GADM_UI_CONN_ID`` (default ``gadm_postgis``), ``GADM_UI_SCHEMA``
(default schema shown, ``gadm``), ``GADM_UI_RUNS`` (runs in the chart, 20).
"""

from __future__ import annotations

import functools
import html
import os

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from gadm_airflow import charts, db, history, schema
from gadm_airflow.errors import ParameterError

DAG_ID = "gadm_load"
CONN_ID = os.environ.get("GADM_UI_CONN_ID", "gadm_postgis")
DEFAULT_SCHEMA = os.environ.get("GADM_UI_SCHEMA", "gadm")
RUNS = int(os.environ.get("GADM_UI_RUNS", "20"))

app = FastAPI(title="GADM loads", dependencies=[
    Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID))])


def _schema(name: str | None) -> str:
    try:
        return db.validate_schema(name or DEFAULT_SCHEMA)
    except ParameterError as exc:
        raise HTTPException(400, str(exc)) from exc


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@functools.lru_cache(maxsize=64)
def _thumbnail(target: str, level: int, run_id: str) -> bytes:
    """Cached per published run: a new publish of the level draws a new map."""
    with db.connect_conn_id(CONN_ID) as conn:
        return charts.map_thumbnail(conn, target, level)


@app.get("/chart.png")
def chart(schema: str | None = None) -> Response:
    with db.connect_conn_id(CONN_ID) as conn:
        runs = history.recent_runs(conn, _schema(schema), RUNS)
    return _png(charts.history_chart(runs))


@app.get("/map/{level}.png")
def level_map(level: int, schema: str | None = None) -> Response:
    target = _schema(schema)
    with db.connect_conn_id(CONN_ID) as conn:
        live = {p["level"]: p for p in history.published_levels(conn, target)}
    if level not in live:
        raise HTTPException(404, f"level {level} is not published in schema {target}")
    try:
        return _png(_thumbnail(target, level, live[level]["run_id"]))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@app.get("/", response_class=HTMLResponse)
def page(request: Request, schema: str | None = None) -> str:
    target = _schema(schema)
    with db.connect_conn_id(CONN_ID) as conn:
        schemas = history.schemas_with_history(conn)
        runs = history.recent_runs(conn, target, RUNS)
        live = history.published_levels(conn, target)
    return render_page(request.scope.get("root_path", ""), target, schemas, runs, live)


def _fmt_time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "–"


def _num(value, fmt: str = "{}") -> str:
    return "–" if value is None else fmt.format(value)


def _run_link(run_id: str) -> str:
    return f'<a target="_top" href="/dags/{DAG_ID}/runs/{html.escape(run_id)}">{html.escape(run_id)}</a>'


def _level_figures(runs: list[dict], run_id: str, level: int) -> dict:
    for run in runs:
        if run["run_id"] == run_id:
            return next((lv for lv in run["levels"] if lv["level"] == level), {})
    return {}


def render_page(base: str, target: str, schemas: list[str], runs: list[dict], live: list[dict]) -> str:
    e = html.escape
    q = f"?schema={e(target)}"
    others = " ".join(f'<a href="{base}/?schema={e(s)}">{e(s)}</a>' for s in schemas if s != target)
    if runs:
        last = runs[0]
        if last["status"] == "unchanged":
            since = min((p["published_at"] for p in live), default=None)
            status = (f"Last check {_fmt_time(last['recorded_at'])} ({_run_link(last['run_id'])}): source "
                      f"unchanged since {_fmt_time(since)}, nothing loaded.")
        else:
            status = (f"Last load {_fmt_time(last['recorded_at'])} ({_run_link(last['run_id'])}): "
                      f"<b>{last['total_rows']}</b> rows in <b>{last['total_seconds']:.2f}</b> s of level work, "
                      f"engine {e(last['engine'] or '?')}, source <code>{e(last['source'] or '?')}</code>.")
    else:
        status = f"No runs recorded in schema {e(target)} yet."
    level_rows = []
    for p in live:
        fig = _level_figures(runs, p["run_id"], p["level"])
        level_rows.append(
            f'<tr class="level" data-level="{p["level"]}"><td>{schema.levels_layer(p["level"])}</td>'
            f'<td><code>{e(target)}.{e(p["table_name"])}</code></td><td class="rows">{p["rows"]}</td>'
            f'<td>{_fmt_time(p["published_at"])}</td><td class="seconds">{_num(fig.get("total_seconds"), "{:.2f}")}</td>'
            f'<td>{_num(fig.get("rows_per_s"))}</td><td>{_run_link(p["run_id"])}</td></tr>')
    run_rows = [
        f'<tr><td>{_fmt_time(r["recorded_at"])}</td><td>{_run_link(r["run_id"])}</td><td>{e(r["status"])}</td>'
        f'<td>{e(r["engine"] or "")}</td><td>{_num(r["total_rows"])}</td>'
        f'<td>{_num(r["total_seconds"], "{:.2f}")}</td></tr>' for r in runs]
    maps = "".join(
        f'<figure><img class="map" src="{base}/map/{p["level"]}.png{q}" width="{charts.THUMB_PX[0]}" '
        f'height="{charts.THUMB_PX[1]}" alt="map of {schema.levels_layer(p["level"])}">'
        f'<figcaption>{schema.levels_layer(p["level"])}: {p["rows"]} rows</figcaption></figure>' for p in live)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GADM loads: {e(target)}</title>
<link rel="icon" href="data:,">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.2em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .25em .7em; text-align: left; }}
td.rows, td.seconds {{ text-align: right; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }} figcaption {{ font-size: 12px; color: #555; }}
img.map {{ background: #eef3f7; border: 1px solid #ccd; }}
.status {{ padding: .6em .8em; background: #f4f6f8; border-left: 4px solid #3d7ab8; }}
</style></head><body>
<h1>GADM loads &mdash; schema <code>{e(target)}</code></h1>
<p>{f"Other schemas: {others}" if others else ""}</p>
<p class="status" id="status">{status}</p>
<h2>Latest load per level</h2>
<table id="levels"><tr><th>Level</th><th>Table</th><th>Rows</th><th>Published</th><th>Load time (s)</th>
<th>Rows/s</th><th>Run</th></tr>{"".join(level_rows) or '<tr><td colspan="7">nothing published yet</td></tr>'}
</table>
<h2>Last runs</h2>
<img id="chart" src="{base}/chart.png{q}" width="900" height="340" alt="load time and rows/s per level">
<table id="runs"><tr><th>When</th><th>Run</th><th>Status</th><th>Engine</th><th>Rows</th><th>Seconds</th></tr>
{"".join(run_rows)}</table>
<h2>Maps</h2>
{maps or "<p>nothing published yet</p>"}
</body></html>"""


class GadmLoadsPlugin(AirflowPlugin):
    name = "gadm_loads"
    fastapi_apps = [{"app": app, "url_prefix": "/gadm", "name": "GADM loads"}]
    external_views = [{"name": "GADM loads", "href": "/gadm/", "category": "browse", "url_route": "gadm-loads"}]
