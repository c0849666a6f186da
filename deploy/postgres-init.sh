#!/usr/bin/env bash
# First start of the compose PostGIS (docker-entrypoint-initdb.d): the GADM target database and
# its least-privileged role, next to the metadata DB (the image's POSTGRES_DB), as bin/setup
# and bin/stack create them natively.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v user="$GADM_DB_USER" -v db="$GADM_DB_NAME" -v pw="$GADM_DB_PASSWORD" <<'SQL'
CREATE ROLE :"user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user";
\c :"db"
CREATE EXTENSION IF NOT EXISTS postgis;
SQL
