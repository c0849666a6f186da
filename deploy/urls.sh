# Derive Airflow's connection URLs from the environment's parts. Sourced by bin/stack (native)
# and deploy/entrypoint.sh (containers), so both build them the same way.
_db="${AIRFLOW_DB_USER:?}:${AIRFLOW_DB_PASSWORD:?run deploy/secrets.sh}@${AIRFLOW_DB_HOST:?}:${AIRFLOW_DB_PORT:-5432}/${AIRFLOW_DB_NAME:?}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://$_db"
export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql+psycopg2://$_db"
export AIRFLOW__CELERY__BROKER_URL="redis://${REDIS_HOST:?}:${REDIS_PORT:-6379}/${REDIS_DB:-0}"
unset _db
