"""docker-compose.yaml describes the native stack (`bin/stack`): same services, environment,
commands and health checks, with pinned images. Docker cannot run here, so these read files.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
COMMON = COMPOSE["x-airflow-common"]
AIRFLOW_SERVICES = [name for name, s in SERVICES.items() if s.get("image") == COMMON["image"]]
# native component -> compose service
SERVICE_OF = {"api-server": "airflow-apiserver", "scheduler": "airflow-scheduler",
              "dag-processor": "airflow-dag-processor", "triggerer": "airflow-triggerer",
              "worker": "airflow-worker", "flower": "airflow-flower"}
# Listening addresses differ on purpose: 127.0.0.1 natively, all interfaces in a container
# (published on 127.0.0.1 only).
ADDRESS_FLAGS = {"--host", "-H"}
DERIVED = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__BROKER_URL"}


def env_keys(path) -> set[str]:
    return {line.split("=", 1)[0] for line in path.read_text().splitlines() if re.match(r"[A-Z_][A-Z0-9_]*=", line)}


@pytest.fixture(scope="module")
def native() -> dict[str, dict]:
    """bin/stack's components: {kind: {"argv": [...], "health": [...]}} (workers merged)."""
    out = subprocess.run([str(ROOT / "bin" / "stack"), "commands"], check=True, capture_output=True, text=True)
    comps = {}
    for line in out.stdout.splitlines():
        name, command, health = line.split("\t")
        kind = "worker" if name.startswith("worker") else name
        comps[kind] = {"argv": command.split(), "health": health.split()}
    return comps


def shape(argv: list[str]) -> list[str]:
    """A command line with the values of address flags and worker names blanked."""
    out = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in ADDRESS_FLAGS:
            arg = "<host>" if "@" not in arg else re.sub(r"^[^@]*@", "<name>@", arg)
        out.append(arg)
    return out


def test_topology():
    assert set(SERVICE_OF.values()) | {"postgres", "redis", "airflow-init"} == set(SERVICES)
    assert SERVICES["airflow-flower"]["profiles"] == ["flower"]
    worker = SERVICES["airflow-worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker and "ports" not in worker, "a fixed name or port prevents --scale"
    for name in ("airflow-apiserver", "airflow-flower", "postgres"):
        assert all(p.startswith("127.0.0.1:") for p in SERVICES[name]["ports"]), name


def test_every_airflow_service_shares_one_environment():
    assert set(AIRFLOW_SERVICES) == set(SERVICE_OF.values()) | {"airflow-init"}
    for name in AIRFLOW_SERVICES:
        service = SERVICES[name]
        assert service["env_file"] == ["deploy/airflow.env", "var/secrets.env"], name
        env = service["environment"]
        assert {k: env[k] for k in COMMON["environment"]} == COMMON["environment"], name
        assert env["PYTHONPATH"].split(":") == ["/opt/airflow/include", "/opt/airflow/deploy"]
        mounts = {v.split(":")[1] for v in service["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins",
                "/opt/airflow/work"} <= mounts, name


def test_containers_get_every_setting_the_native_stack_sets(native):
    # `bin/stack commands` rendered var/stack/airflow.env
    native_keys = env_keys(ROOT / "var" / "stack" / "airflow.env")
    compose_keys = (env_keys(ROOT / "deploy" / "airflow.env") | env_keys(ROOT / "var" / "secrets.env")
                    | set(COMMON["environment"]) | DERIVED)
    assert native_keys == compose_keys
    urls = (ROOT / "deploy" / "urls.sh").read_text()
    assert all(f"export {k}=" in urls for k in DERIVED)
    assert "deploy/urls.sh" in (ROOT / "bin" / "stack").read_text()
    assert ". /opt/airflow/deploy/urls.sh" in (ROOT / "deploy" / "entrypoint.sh").read_text()


def test_env_file_is_plain_key_value():
    """Docker reads env files verbatim: no quotes, expansions or inline comments."""
    for line in (ROOT / "deploy" / "airflow.env").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*=[^\s\"'$#]*", line), line


def test_commands_and_health_checks_are_the_native_ones(native):
    assert set(native) == set(SERVICE_OF)
    for kind, service_name in SERVICE_OF.items():
        service = SERVICES[service_name]
        argv = native[kind]["argv"]
        assert argv[0] == "airflow"
        command = [re.sub(r"\$\{GADM_WORKER_QUEUES:-(\w+)\}", r"\1", c) for c in service["command"]]
        assert shape(command) == shape(argv[1:]), service_name
        health = native[kind]["health"]
        if kind == "worker":
            health = ["worker", "worker"]  # compose's node name is worker@<container>
            assert "worker@%h" in service["command"]
        assert service["healthcheck"]["test"] == ["CMD", "bash", "/opt/airflow/deploy/health", *health]
    assert SERVICES["airflow-init"]["command"] == ["bash", "/opt/airflow/deploy/init.sh"]
    assert '"$DEPLOY/init.sh"' in (ROOT / "bin" / "stack").read_text()


def test_images_are_pinned_and_match_requirements():
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert base == f"apache/airflow:{pins['apache-airflow']}-python3.11"
    assert COMMON["image"] == f"gadm-airflow:{pins['apache-airflow']}-python3.11"
    assert "pip install --no-cache-dir -r /opt/airflow/requirements.txt" in dockerfile
    for name, service in SERVICES.items():
        image = service.get("image") or COMMON["image"]
        repo, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
    assert SERVICES["postgres"]["image"].startswith("postgis/postgis:15-")  # the local cluster's major
