#!/usr/bin/env bash
# Ensure every per-install secret exists in one env file (default var/secrets.env):
# generates only the missing keys, never changes an existing one, never prints them.
# Used by bin/setup, bin/stack and (before `docker compose up`) by Docker users.
set -euo pipefail
FILE="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/var/secrets.env}"
mkdir -p "$(dirname "$FILE")"
umask 077
touch "$FILE"
token() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
fernet() { python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'; }
ensure() {  # KEY GENERATOR
  grep -q "^$1=" "$FILE" || printf '%s=%s\n' "$1" "$($2)" >> "$FILE"
}
ensure GADM_DB_PASSWORD token            # the least-privileged `gadm` role of the target DB
ensure AIRFLOW__CORE__FERNET_KEY fernet  # encrypts connection passwords in the metadata DB
ensure AIRFLOW__API_AUTH__JWT_SECRET token  # shared by api-server, scheduler and workers
ensure AIRFLOW__API__SECRET_KEY token
ensure AIRFLOW_DB_PASSWORD token         # the stack's metadata DB role (bin/stack, docker-compose)
