"""The DAG's task bodies: plain functions from params to small XCom dicts.

They hold no Airflow imports beyond the exception that fails a task without
retries, so they run the same under `airflow dags test`, on Celery workers
and from tests or benchmarks.
"""

from __future__ import annotations

import errno
import functools
import logging
import re
import shutil
import time
from pathlib import Path

from . import db, layout, preprocess, publish as publish_mod, report, schema, sink, source, staging
from . import assets, history
from . import link as link_mod
from . import verify as verify_mod
from .errors import ParameterError, PermanentError
from .layout import LevelSpec
from .metrics import PhaseTimer, peak_rss_mb
from .settings import Settings

log = logging.getLogger("gadm_airflow")

BATCH_ROWS_MIN, BATCH_ROWS_MAX = 100, 200_000
FORM_LEVELS = tuple(str(n) for n in schema.LEVELS)


def fail_fast(func):
    """Turn bad-input errors into AirflowFailException (no retries); others retry."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except PermanentError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def validate_params(params: dict) -> dict:
    """Check every param once, with messages that name it; returns the normalised set."""
    settings = Settings.from_env()
    levels = params.get("levels")
    if isinstance(levels, list):  # the UI's multi-select sends its choices as strings
        levels = [int(n) if isinstance(n, str) and n in FORM_LEVELS else n for n in levels]
    if levels is not None:
        if not isinstance(levels, list) or not levels or any(
                not isinstance(n, int) or isinstance(n, bool) or n not in schema.LEVELS for n in levels):
            raise ParameterError(f"param 'levels': {levels!r} must be a non-empty list of levels 0..5")
    batch_rows = params.get("batch_rows")
    batch_rows = settings.default_batch_rows if batch_rows is None else batch_rows
    if not isinstance(batch_rows, int) or not BATCH_ROWS_MIN <= batch_rows <= BATCH_ROWS_MAX:
        raise ParameterError(f"param 'batch_rows': {batch_rows!r} must be an integer in "
                             f"{BATCH_ROWS_MIN}..{BATCH_ROWS_MAX}")
    engine = params.get("engine") or "geopandas"
    if engine not in preprocess.ENGINES:
        raise ParameterError(f"param 'engine': {engine!r} is not one of {sorted(preprocess.ENGINES)}")
    conn_id = params.get("postgres_conn_id") or "gadm_postgis"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,250}", conn_id):
        raise ParameterError(f"param 'postgres_conn_id': {conn_id!r} is not a connection id")
    return {
        "source": params.get("source") or settings.default_source,
        "levels": sorted(set(levels)) if levels else None,
        "engine": engine,
        "schema": db.validate_schema(params.get("schema") or "gadm"),
        "postgres_conn_id": conn_id,
        "batch_rows": batch_rows,
    }


def run_dir(run_id: str) -> Path:
    return Settings.from_env().work_dir / "gadm_load" / report.file_stem(run_id)


def _remove_idle_run_dirs(mine: Path, ttl: float) -> None:
    """Drop this run's old intermediates and those of runs idle for longer than `ttl`."""
    if not mine.parent.exists():
        return
    now = time.time()
    for folder in mine.parent.iterdir():
        if folder == mine or now - folder.stat().st_mtime > ttl:
            shutil.rmtree(folder, ignore_errors=True)


@fail_fast
def resolve_source(params: dict, run_id: str) -> list[dict]:
    """Validate params, find the source, plan one item per level (no database writes).

    Each item carries its level's spec plus the run's params and source identity, so
    the mapped tasks and the gate after them need no other XCom.
    """
    p = validate_params(params)
    settings = Settings.from_env()
    resolved = source.resolve(p["source"], settings)
    specs = layout.plan(resolved, p["levels"])
    if not specs:
        wanted = p["levels"] or "any"
        raise PermanentError(f"source {p['source']}: none of the requested levels ({wanted}) is present")
    missing = sorted(set(p["levels"] or []) - {s.level for s in specs})
    if missing:
        log.warning("levels %s are not in the source: skipped", missing)
    log.info("source %s: layout %s, levels %s", resolved.local_path, specs[0].layout,
             ", ".join(f"{s.label} ({s.features} features)" for s in specs))
    p["run_id"] = run_id
    return [{"spec": s.to_xcom(), "params": p, "source": resolved.to_dict()} for s in specs]


def _with_staging(conn, plan: list[dict], run_id: str) -> list[dict]:
    settings = Settings.from_env()
    params = plan[0]["params"]
    name = staging.prepare(conn, params["schema"], run_id, settings.staging_ttl_seconds)
    log.info("staging into schema %s; publishing into %s", name, params["schema"])
    _remove_idle_run_dirs(run_dir(run_id), settings.staging_ttl_seconds)
    return [{**item, "params": {**item["params"], "staging": name}} for item in plan]


@fail_fast
def preprocess_level(item: dict, run_id: str) -> dict:
    spec, params = LevelSpec.from_xcom(item["spec"]), item["params"]
    timer = PhaseTimer()
    out = run_dir(run_id) / f"{schema.table_name(spec.level)}.parquet"
    try:
        result = preprocess.run(spec, out, engine=params["engine"], batch_rows=params["batch_rows"],
                                log=log, timer=timer)
    except OSError as exc:
        if exc.errno == errno.ENOSPC or "No space left" in str(exc):
            raise PermanentError(f"{spec.label}: no space left in the work dir {out.parent} while writing "
                                 "the intermediate; free space or point GADM_WORK_DIR elsewhere") from exc
        raise
    xcom = result.to_dict()
    xcom.update(intermediate=str(out), columns=spec.columns, seconds=timer.rounded(),
                peak_rss_mb=peak_rss_mb(), source_features=spec.features)
    if spec.layout != "single" and result.rows_out != spec.features:
        raise PermanentError(f"{spec.label}: read {result.rows_out} features, source reports {spec.features}")
    log.info("%s: %d rows in, %d out, %d repaired, %d promoted, %d NULL geometries, %d NA->NULL",
             spec.label, result.rows_in, result.rows_out, result.geometry.repaired,
             result.geometry.promoted, result.geometry.null_geometries, result.na_to_null)
    return xcom


@fail_fast
def load_level(pre: dict, item: dict) -> dict:
    params = item["params"]
    timer = PhaseTimer()
    timer.seconds.update(pre["seconds"])
    with db.connect_conn_id(params["postgres_conn_id"]) as conn:
        staging.touch(conn, params["staging"], params["run_id"])
        loaded = sink.load_level(conn, params["staging"], pre["level"],
                                 pre["columns"], Path(pre["intermediate"]), params["batch_rows"], timer)
    if loaded["rows_loaded"] != pre["rows_out"]:
        raise RuntimeError(f"{pre['layer']}: COPY wrote {loaded['rows_loaded']} rows, expected {pre['rows_out']}")
    out = dict(pre)
    out.update(loaded, seconds=timer.rounded(), load_peak_rss_mb=peak_rss_mb())
    return out


def check_level_results(plan: list[dict], results: list[dict | None]) -> list[dict]:
    """The gate: every planned level must have delivered a load result.

    The trigger rule alone is not trusted (mapped-task trigger-rule bugs in Airflow), nor
    the shape: with a single mapped instance Airflow may hand over the bare dict.
    """
    if isinstance(results, dict):
        results = [results]
    got = {r["level"]: r for r in (results or []) if r}
    planned = [item["spec"]["level"] for item in plan]
    missing = sorted(set(planned) - set(got))
    if missing:
        raise RuntimeError(f"levels {missing} produced no load result; refusing to link or publish")
    return [got[level] for level in planned]


@fail_fast
def link_levels(plan: list[dict], results: list[dict | None]) -> dict:
    levels = check_level_results(plan, results)
    params = plan[0]["params"]
    start = time.perf_counter()
    with db.connect_conn_id(params["postgres_conn_id"]) as conn:
        staging.touch(conn, params["staging"], params["run_id"])
        linked = link_mod.link_all(conn, params["staging"], params["schema"], [r["level"] for r in levels])
    return {"levels": linked, "seconds": round(time.perf_counter() - start, 3), "results": levels}


@fail_fast
def verify_levels(plan: list[dict], linked: dict) -> dict:
    params = plan[0]["params"]
    start = time.perf_counter()
    orphans = {r["level"]: r["orphans"] for r in linked["levels"]}
    with db.connect_conn_id(params["postgres_conn_id"]) as conn:
        staging.touch(conn, params["staging"], params["run_id"])
        checked = verify_mod.verify_all(conn, params["staging"], linked["results"], orphans)
    return {"levels": checked, "seconds": round(time.perf_counter() - start, 3)}


@fail_fast
def publish_levels(plan: list[dict], linked: dict) -> dict:
    params = plan[0]["params"]
    start = time.perf_counter()
    levels = [r["level"] for r in linked["results"]]
    with db.connect_conn_id(params["postgres_conn_id"]) as conn:
        published = publish_mod.publish(conn, params["staging"], params["schema"], levels)
    published["seconds"] = round(time.perf_counter() - start, 3)
    return published


def report_run(plan: list[dict], linked: dict, verified: dict, published: dict, run_id: str) -> dict:
    summary = report.summarise(linked["results"], linked, verified, published,
                               plan[0]["params"]["engine"], plan[0]["source"])
    table = report.format_table(summary)
    log.info("benchmark summary\n%s", table)
    report.write(summary, table, Settings.from_env().report_dir, run_id)
    shutil.rmtree(run_dir(run_id), ignore_errors=True)
    return summary


@fail_fast
def check_source(plan: list[dict], force: bool, run_id: str) -> list[dict]:
    """The plan to go on with, or [] when the live tables already hold this very source.

    Compares the resolved source identity with the one each planned level was last
    published from (`history`); an unchanged run is recorded in `load_runs`. A run that
    goes on gets its staging schema here (and idle leftovers of other runs are removed).
    """
    params, resolved = plan[0]["params"], plan[0]["source"]
    levels = [item["spec"]["level"] for item in plan]
    with db.connect_conn_id(params["postgres_conn_id"]) as conn:
        since = history.unchanged_since(conn, params["schema"], levels, resolved["identity"])
        if since is None or force:
            if since is None:
                log.info("source %s differs from what %s holds (or was never published): loading",
                         resolved["source"], params["schema"])
            else:
                log.info("source unchanged since %s, but force=True: reloading", since.isoformat())
            return _with_staging(conn, plan, run_id)
        history.record_run(conn, params["schema"], run_id, "unchanged", resolved["identity"],
                           engine=params["engine"], source=resolved["source"])
    log.info("source %s unchanged since %s, nothing to do (levels %s of schema %s; set force to reload)",
             resolved["source"], since.isoformat(timespec="seconds"), levels, params["schema"])
    return []


def record_published(plan: list[dict], linked: dict, run_id: str) -> list[str]:
    """Store the published levels' source identity; return their Asset URIs."""
    params = plan[0]["params"]
    levels = [{"level": r["level"], "rows": r["rows_out"]} for r in linked["results"]]
    with db.connect_conn_id(params["postgres_conn_id"]) as conn:
        history.record_published(conn, params["schema"], levels, plan[0]["source"]["identity"], run_id)
    return assets.published_uris(params["postgres_conn_id"], params["schema"], [r["level"] for r in levels])


def record_report(plan: list[dict], summary: dict, run_id: str) -> Path:
    """Write the run's `load_runs` row and its benchmark chart PNG (beside the JSON report)."""
    from . import charts  # matplotlib: only the report task needs it

    params = plan[0]["params"]
    with db.connect_conn_id(params["postgres_conn_id"]) as conn:
        history.record_run(conn, params["schema"], run_id, "published", plan[0]["source"]["identity"], summary)
    png = charts.summary_chart(summary)
    report_dir = Settings.from_env().report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    out = report_dir / f"{report.file_stem(run_id)}.png"
    for path in (out, report_dir / "latest.png"):
        path.write_bytes(png)
    log.info("benchmark chart: %s", out)
    return out
