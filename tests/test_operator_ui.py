"""The operator's view, through a real api-server and a real browser.

Starts its own `airflow api-server` on 127.0.0.1:8091 with its own AIRFLOW_HOME
(var/ui-test/airflow, SQLite; DAGs serialised with `airflow dags reserialize`,
no scheduler), then:
- triggers gadm_load through the REST API with bad params: the form's JSON schema
  refuses them (HTTP 400 naming the param) before any run exists;
- fetches the "GADM loads" plugin page over HTTP (401 without a login) and renders
  it in headless Chromium, driven over the DevTools protocol: no console errors,
  every image decoded, the real figures of the last run on screen, a screenshot.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import matplotlib.image
import psycopg
import pytest
import requests
from psycopg import sql

from conftest import ROOT, _secrets, sample
from test_refresh import drop_schemas
from gadm_airflow import history, schema

PORT = 8091
BASE = f"http://127.0.0.1:{PORT}"
UI_VAR = ROOT / "var" / "ui-test"
SCHEMA = "ui_test"
USER, PASSWORD = "operator", "ui-test-password"
CHROMIUM = shutil.which("chromium")
SCREENSHOT = UI_VAR / "operator_page.png"


def _ui_env() -> dict[str, str]:
    secrets = _secrets()
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "gadm",
            "password": secrets["GADM_DB_PASSWORD"], "schema": "gadm"}
    return {**os.environ, **secrets, "AIRFLOW_HOME": str(UI_VAR / "airflow"), "PYTHONWARNINGS": "ignore",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(UI_VAR / "passwords.json"),
            "AIRFLOW__API__WORKERS": "1", "AIRFLOW_CONN_GADM_POSTGIS": json.dumps(conn)}


def _airflow(env: dict, *args: str) -> None:
    log = UI_VAR / f"{args[0]}-{args[1]}.log"
    with open(log, "w") as out:
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "airflow"), *args], env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, f"airflow {' '.join(args)} failed; see {log}"


@pytest.fixture(scope="module")
def api_server():
    """A private api-server on 127.0.0.1:8091; stopped (its process group) afterwards."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is already in use; stop whatever listens there (not ours)")
    (UI_VAR / "airflow").mkdir(parents=True, exist_ok=True)
    (UI_VAR / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
    env = _ui_env()
    _airflow(env, "db", "migrate")
    _airflow(env, "dags", "reserialize")
    log = open(UI_VAR / "api-server.log", "w")
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "airflow"), "api-server", "-H", "127.0.0.1",
                             "-p", str(PORT), "-w", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        for _ in range(180):
            assert proc.poll() is None, f"api-server exited; see {UI_VAR / 'api-server.log'}"
            try:
                if requests.get(f"{BASE}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail("api-server not healthy after 180 s")
        yield BASE
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def token(api_server) -> str:
    resp = requests.post(f"{api_server}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()["access_token"]


def trigger(token: str, conf: dict) -> requests.Response:
    return requests.post(f"{BASE}/api/v2/dags/gadm_load/dagRuns", timeout=30,
                         headers={"Authorization": f"Bearer {token}"}, json={"logical_date": None, "conf": conf})


@pytest.mark.parametrize("conf, param", [
    ({"levels": [6]}, "levels"),
    ({"levels": ["ADM_1"]}, "levels"),
    ({"levels": []}, "levels"),
    ({"levels": 1}, "levels"),
    ({"levels": [True]}, "levels"),
    ({"engine": "spark"}, "engine"),
    ({"batch_rows": 50}, "batch_rows"),
    ({"batch_rows": "2000"}, "batch_rows"),
    ({"schema": "Bad-Name"}, "schema"),
    ({"postgres_conn_id": "x; y"}, "postgres_conn_id"),
    ({"force": "yes"}, "force"),
    ({"source": ""}, "source"),
])
def test_trigger_refuses_bad_params(token, conf, param):
    resp = trigger(token, conf)
    assert resp.status_code == 400, resp.text
    assert f"param {param}" in resp.json()["detail"]


def test_trigger_accepts_what_the_form_sends(token):
    """The multi-select sends strings; CLI users send integers: both are valid."""
    for conf in ({"levels": ["0", "2"], "engine": "sedonadb", "force": True}, {"levels": [1, 3], "batch_rows": 500}):
        resp = trigger(token, conf)
        assert resp.status_code == 200, resp.text
        assert resp.json()["conf"] == conf and resp.json()["state"] == "queued"


def test_dag_form_metadata(token):
    """Every param of the trigger form has a title and a description."""
    resp = requests.get(f"{BASE}/api/v2/dags/gadm_load/details", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)
    assert resp.status_code == 200, resp.text
    details = resp.json()
    params = details["params"]
    assert set(params) == {"source", "levels", "engine", "schema", "postgres_conn_id", "batch_rows", "force"}
    for name, spec in params.items():
        assert spec["schema"].get("title") and spec.get("description"), name
    assert params["levels"]["schema"]["examples"] == [str(n) for n in schema.LEVELS]
    assert details["timetable_summary"] == "0 0 1 * *" and details["doc_md"]  # @monthly


@pytest.fixture(scope="module")
def last_run(gadm_dag, dsn):
    """Schema ui_test: a load, an unchanged re-check, a forced reload; returns the last report."""
    from conftest import run_dag

    with psycopg.connect(dsn, autocommit=True) as conn:
        drop_schemas(conn, SCHEMA)
        conf = {"source": str(sample("levels", 0.002, seed=5) / schema.LEVELS_FILE), "schema": SCHEMA,
                "levels": None, "force": False}  # explicit: in-process runs keep earlier confs as defaults
        for extra in ({}, {}, {"force": True}):
            state, xcoms = run_dag(gadm_dag, {**conf, **extra})
            assert state == "success"
        yield xcoms["report"]
        drop_schemas(conn, SCHEMA)


def test_plugin_page_needs_a_login(api_server):
    assert requests.get(f"{api_server}/gadm/", timeout=30).status_code == 401
    bad = requests.get(f"{api_server}/gadm/chart.png", headers={"Authorization": "Bearer nonsense"}, timeout=30)
    assert bad.status_code == 403
    plugins = requests.get(f"{api_server}/api/v2/plugins", timeout=30)
    assert plugins.status_code == 401


def test_plugin_is_registered(token):
    resp = requests.get(f"{BASE}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    plugin = next(p for p in resp.json()["plugins"] if p["name"] == "gadm_loads")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/gadm"
    assert plugin["external_views"][0]["href"] == "/gadm/"


def test_plugin_page_over_http(token, last_run, db):
    auth = {"Authorization": f"Bearer {token}"}
    page = requests.get(f"{BASE}/gadm/", params={"schema": SCHEMA}, headers=auth, timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    run_id = db.execute(sql.SQL("SELECT run_id FROM {}.load_runs ORDER BY recorded_at DESC LIMIT 1").format(
        sql.Identifier(history.meta_schema(SCHEMA)))).fetchone()[0]
    assert run_id in page.text and f"<b>{last_run['total']['rows']}</b> rows" in page.text
    for lv in last_run["levels"]:
        assert f'<tr class="level" data-level="{lv["level"]}">' in page.text
        assert f'<td class="rows">{lv["rows"]}</td>' in page.text
        assert f'<td class="seconds">{lv["total_seconds"]:.2f}</td>' in page.text
    assert "unchanged" in page.text  # the re-check between the two loads is listed
    images = [f"/gadm/chart.png?schema={SCHEMA}"] + [f"/gadm/map/{lv['level']}.png?schema={SCHEMA}"
                                                        for lv in last_run["levels"]]
    for src in images:
        assert f'src="{src}"' in page.text
        img = requests.get(BASE + src, headers=auth, timeout=120)
        assert img.status_code == 200 and img.headers["content-type"] == "image/png", src
        pixels = matplotlib.image.imread(io.BytesIO(img.content), format="png")
        assert pixels.shape[0] > 100 and pixels.std() > 0.01, f"{src} is blank"
    missing = requests.get(f"{BASE}/gadm/map/5.png", params={"schema": "no_such_schema"}, headers=auth, timeout=30)
    assert missing.status_code == 404


class DevTools:
    """The few DevTools-protocol calls the page test needs, over one websocket."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, (method, msg["error"])
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1))))


@pytest.fixture()
def browser():
    from websockets.sync.client import connect

    if CHROMIUM is None:
        pytest.fail("chromium is not installed (bin/setup installs Debian's chromium package)")
    profile = Path(tempfile.mkdtemp(prefix="gadm-chromium-"))
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "--window-size=1200,1500", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert proc.poll() is None, "chromium exited at start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        with connect(next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"],
                     max_size=64 << 20, open_timeout=30) as ws:
            yield DevTools(ws)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def test_plugin_page_in_headless_chromium(browser, token, last_run):
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    # log in as the UI does: the JWT in the `_token` cookie
    browser.call("Network.setCookie", name="_token", value=token, url=BASE + "/")
    browser.call("Page.navigate", url=f"{BASE}/gadm/?schema={SCHEMA}")
    browser.wait_for("Page.loadEventFired", timeout=120)
    state = browser.call("Runtime.evaluate", returnByValue=True, expression="""JSON.stringify({
        text: document.body.innerText,
        images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))})""")
    page = json.loads(state["result"]["value"])
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))

    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")]
    assert errors == []
    statuses = {e["params"]["response"]["url"]: e["params"]["response"]["status"] for e in browser.events
                if e.get("method") == "Network.responseReceived"}
    assert statuses and all(code == 200 for code in statuses.values()), statuses
    assert len(page["images"]) == 1 + len(last_run["levels"]) and all(i["ok"] for i in page["images"]), page
    assert f"{last_run['total']['rows']} rows" in page["text"]
    for lv in last_run["levels"]:
        assert f"{lv['layer']}\t{SCHEMA}.adm_{lv['level']}\t{lv['rows']}\t" in page["text"]
        assert f"{lv['layer']}: {lv['rows']} rows" in page["text"]
    pixels = matplotlib.image.imread(io.BytesIO(SCREENSHOT.read_bytes()), format="png")
    assert pixels.shape[0] > 800 and pixels.shape[1] >= 1000
