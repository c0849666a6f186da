# Sourced by bin/airflow, bin/setup and the tests: the project's one environment.
# Every value can be overridden from the caller's environment.
_GADM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GADM_ROOT="${GADM_ROOT:-$_GADM_ROOT}"
if [ -f "$GADM_ROOT/var/secrets.env" ]; then
  set -a; . "$GADM_ROOT/var/secrets.env"; set +a
fi
export AIRFLOW_HOME="${AIRFLOW_HOME:-$GADM_ROOT/var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$GADM_ROOT/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$GADM_ROOT/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export PYTHONPATH="$GADM_ROOT/include${PYTHONPATH:+:$PYTHONPATH}"
export GADM_DATA_DIR="${GADM_DATA_DIR:-$GADM_ROOT/data}"
export GADM_WORK_DIR="${GADM_WORK_DIR:-$GADM_ROOT/var/work}"
export GADM_CACHE_DIR="${GADM_CACHE_DIR:-$GADM_ROOT/var/cache}"
# sedonadb phones home on import unless told not to.
export SCARF_NO_ANALYTICS=true DO_NOT_TRACK=1
unset _GADM_ROOT
