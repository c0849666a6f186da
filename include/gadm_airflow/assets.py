"""Airflow Assets for the published level tables.

Which tables a run publishes (schema param, levels present) and where (the
connection's host, port and database) is only known at run time, so the
publish task declares one stable `AssetAlias` and attaches one concrete
`Asset` per published table to it, with the URI the Postgres provider
understands: ``postgres://host:port/database/schema/adm_N``. DAGs scheduled
on the alias (see `dags/gadm_refresh_example.py`) run after every publish.
"""

from __future__ import annotations

from . import schema

PUBLISHED_ALIAS = "gadm_published"


def table_uri(host: str, port: int | None, database: str, target: str, level: int) -> str:
    return f"postgres://{host}:{port or 5432}/{database}/{target}/{schema.table_name(level)}"


def published_uris(conn_id: str, target: str, levels: list[int]) -> list[str]:
    """URIs of the level tables of `target` in the database of Airflow connection `conn_id`."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook.get_connection(conn_id)
    database = conn.schema or conn.login
    return [table_uri(conn.host, conn.port, database, target, level) for level in sorted(levels)]


def parse_uri(uri: str) -> tuple[str, str]:
    """(schema, table) of a level-table URI."""
    *_, target, name = uri.rstrip("/").split("/")
    return target, name
