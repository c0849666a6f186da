#!/usr/bin/env bash
# Container entrypoint: derive the connection URLs the way bin/stack does (deploy/urls.sh),
# then hand over to the official image's entrypoint (`api-server` -> `airflow api-server`).
set -euo pipefail
. /opt/airflow/deploy/urls.sh
exec /entrypoint "$@"
