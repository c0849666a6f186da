#!/usr/bin/env bash
# Initialise the stack's metadata DB (idempotent): migrate it, upsert the `gadm_postgis`
# connection to the GADM target, size the heavy pool by the memory rule (pool-slots.sh).
# Run by `bin/stack up` and by docker-compose's airflow-init service, in the stack's env.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
airflow db migrate
conns=$(mktemp --suffix .json)
trap 'rm -f "$conns"' EXIT
python3 - "$conns" <<'PY'
import json, os, sys
conn = {"conn_type": "postgres", "host": os.environ["GADM_DB_HOST"],
        "port": int(os.environ.get("GADM_DB_PORT") or 5432), "login": os.environ["GADM_DB_USER"],
        "password": os.environ["GADM_DB_PASSWORD"], "schema": os.environ["GADM_DB_NAME"]}
with open(sys.argv[1], "w") as f:
    json.dump({"gadm_postgis": conn}, f)
PY
slots=$("$HERE/pool-slots.sh")
# Independent of each other: in parallel (each CLI start costs seconds).
airflow connections import --overwrite "$conns" & conn_pid=$!
airflow pools set "$GADM_HEAVY_POOL" "$slots" \
  "GADM preprocess/load: floor((available MB - ${GADM_STACK_RESERVE_MB:-2048}) / ${GADM_TASK_PEAK_MB:-1024} MB per task)"
wait "$conn_pid"
