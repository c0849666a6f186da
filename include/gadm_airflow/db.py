"""Connections and identifiers for the target PostGIS database."""

from __future__ import annotations

import re
from contextlib import contextmanager
from hashlib import blake2b
from typing import Iterator

import psycopg
from psycopg import sql

from .errors import ParameterError

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


def validate_schema(name: str) -> str:
    """A target schema param: lower-case identifier, short enough for a staging twin."""
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise ParameterError(
            f"param 'schema': {name!r} is not a valid schema name "
            "(lower-case letters, digits and _, starting with a letter or _, at most 48 characters)"
        )
    if name.startswith("pg_") or name == "information_schema":
        raise ParameterError(f"param 'schema': {name!r} is reserved by PostgreSQL")
    return name


def lock_key(schema: str) -> int:
    """Advisory lock id serialising writers of one target schema."""
    return int.from_bytes(blake2b(f"gadm-airflow:{schema}".encode(), digest_size=8).digest(), "little", signed=True)


def connect_conn_id(conn_id: str) -> psycopg.Connection:
    """A psycopg 3 connection from an Airflow Connection (via the Postgres provider's hook)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    if not isinstance(conn, psycopg.Connection):
        raise RuntimeError("the Postgres provider did not return a psycopg 3 connection; install SQLAlchemy 2")
    return conn


@contextmanager
def transaction(conn: psycopg.Connection) -> Iterator[psycopg.Cursor]:
    """One transaction on `conn`; rolled back on any error."""
    with conn.transaction(), conn.cursor() as cur:
        yield cur


def table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def table_exists(cur: psycopg.Cursor, schema: str, name: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{name}"',))
    return bool(cur.fetchone()[0])
