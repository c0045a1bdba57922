"""Fixtures that run the apps as real servers: the backend under gunicorn on a fresh
database per test module, the frontend under gunicorn pointing at it, the frontend's
Flask test client against that backend, and Debian's Chromium driven by Playwright.

Each test starts from an empty journal (`journal` empties the module's database and
Redis, and tells the backend's workers to forget what they hold in memory, as
`flask --app backend forget-cache` does after a restore), so a module pays for its
servers once and its tests stay independent.
"""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from pymongo import MongoClient

from backend.cache import Cache
from tests import servers
from tests.conftest import database_uri

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
STARTUP_SECONDS = 30


class AppServer:
    """`backend:create_app()` or `frontend:create_app()` under gunicorn, as `make run` starts it."""

    def __init__(self, app, settings, log_path):
        self.port = servers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PORT": str(self.port), "WEB_CONCURRENCY": "1", **settings}
        argv = [str(GUNICORN), "-c", "config/gunicorn.conf.py", f"{app}:create_app()"]
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_serving()

    def _wait_until_serving(self):
        # gunicorn listens before its worker has booted; wait for an answer.
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                requests.get(f"{self.url}/healthz", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"not serving after {STARTUP_SECONDS}s:\n{self.log_path.read_text()}")

    def stop(self):
        if self.process.poll() is None:
            # SIGINT is gunicorn's quick shutdown: a test server need not wait out keep-alive connections.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Journal:
    """The backend's API, for arranging what a test starts from (and checking what it left)."""

    def __init__(self, url):
        self.api = f"{url}/api/v1"
        self.http = requests.Session()

    def call(self, method, path, **kwargs):
        response = self.http.request(method, self.api + path, timeout=10, **kwargs)
        assert response.status_code < 400, (response.status_code, response.text)
        return response.json() if response.headers.get("Content-Type", "").endswith("json") else response

    def create_day(self, date, **hours):
        return self.call("POST", "/days", json={"date": date, **hours})

    def add_task(self, date, text, **extra):
        return self.call("POST", f"/days/{date}/tasks", json={"text": text, **extra})

    def day(self, date):
        return self.call("GET", f"/days/{date}")

    def import_markdown(self, data, mode="replace"):
        return self.call("POST", f"/import?mode={mode}", data=data, headers={"Content-Type": "text/markdown"})

    def export(self):
        return self.call("GET", "/export").content


def run_backend(mongodb_uri, redis_server, redis_url, tmp_path_factory, **settings):
    """Yield the backend under gunicorn on a database of its own (dropped after), with
    `settings` added to the test defaults; for module-scoped fixtures."""
    if redis_server.process is None:  # a cache test may have stopped it
        redis_server.start()
    # Cache keys name the user, not the database: entries of an earlier module must go.
    redis_lib.Redis.from_url(redis_url).flushdb()
    name = f"kyb_stack_{uuid.uuid4().hex[:12]}"
    server = AppServer("backend", {"MONGODB_URI": database_uri(mongodb_uri, name), "REDIS_URL": redis_url,
                                   "LOG_LEVEL": "WARNING", "RATE_LIMIT": "100000 per minute",
                                   "AUTH_DEV_USER_HEADER": "true", **settings},
                       tmp_path_factory.mktemp("backend") / "backend.log")
    server.database = name
    yield server
    server.stop()
    with MongoClient(mongodb_uri) as client:
        client.drop_database(name)


@pytest.fixture(scope="module")
def backend_server(mongodb_uri, redis_server, redis_url, tmp_path_factory):
    """The backend under gunicorn on a database of its own, for one test module."""
    yield from run_backend(mongodb_uri, redis_server, redis_url, tmp_path_factory)


@pytest.fixture(scope="module")
def signed_in_backend(keycloak, mongodb_uri, redis_server, redis_url, tmp_path_factory):
    """The backend under gunicorn trusting tokens of the test Keycloak only: no X-User-Id."""
    yield from run_backend(mongodb_uri, redis_server, redis_url, tmp_path_factory, OIDC_ISSUER=keycloak.issuer,
                           OIDC_AUDIENCE=keycloak.audience, AUTH_DEV_USER_HEADER="false")


@pytest.fixture
def journal(backend_server, mongodb_uri, redis_url):
    """An empty journal on the module's backend; its API for arranging the test."""
    with MongoClient(mongodb_uri) as client:
        database = client[backend_server.database]
        # Emptied, not dropped: the backend made its indexes once, on first use.
        for collection in database.list_collection_names():
            database[collection].delete_many({})
    redis_lib.Redis.from_url(redis_url).flushdb()
    # The workers' near-caches still hold the previous test's days: the wipe was behind their back.
    Cache(redis_url, timeout_ms=1000, ttl=60).invalidate_everything()
    return Journal(backend_server.url)


# Test frontends sign every visitor in as the backend's default user (development sign-in),
# so the journal a test arranges through the API without a user header is the one they show.
DEV_USER = "demo"


def sessions_url(redis_server):
    """Where test frontends keep their sessions: database 1 of the test Redis (`journal`
    empties database 0), started again if an earlier test stopped it."""
    if redis_server.process is None:
        redis_server.start()
    return f"redis://127.0.0.1:{redis_server.port}/1"


def frontend_settings(redis_server, **settings):
    """A test frontend's settings: sessions in the test Redis, development sign-in, and `settings`."""
    return {"REDIS_URL": sessions_url(redis_server), "AUTH_DEV_USER": DEV_USER, **settings}


@pytest.fixture
def frontend_app(backend_server, redis_server):
    from frontend import create_app

    return create_app(frontend_settings(redis_server, BACKEND_URL=backend_server.url, TESTING=True))


@pytest.fixture
def frontend(frontend_app, journal):
    """The frontend's test client, talking to a real backend over HTTP, on an empty journal."""
    return frontend_app.test_client()


@pytest.fixture(scope="module")
def frontend_server(backend_server, redis_server, tmp_path_factory):
    """The frontend under gunicorn, pointed at the module's backend."""
    server = AppServer("frontend", frontend_settings(redis_server, BACKEND_URL=backend_server.url,
                                                     LOG_LEVEL="WARNING"),
                       tmp_path_factory.mktemp("frontend") / "frontend.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (its own browser builds are never installed)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


def open_page(browser, base_url, **options):
    """A page in a fresh context (own cookies), with console errors and failed requests collected."""
    context = browser.new_context(base_url=base_url, **options)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    return context, page


@pytest.fixture
def page(browser, frontend_server, journal):
    """A browser tab with JavaScript, on the frontend, on an empty journal."""
    context, page = open_page(browser, frontend_server.url)
    yield page
    context.close()


@pytest.fixture
def page_without_js(browser, frontend_server, journal):
    """A browser tab with JavaScript switched off."""
    context, page = open_page(browser, frontend_server.url, java_script_enabled=False)
    yield page
    context.close()


def screenshot(page, name):
    """Save the whole page under test-artifacts/screenshots/ (looked at by people, not asserted)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret injects a <style>, which the page's CSP (rightly) refuses.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, caret="initial")


def axe_violations(page, impacts=("serious", "critical")):
    """axe-core's violations of the page at the given impacts, as (rule id, impact, html of a node)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], v["nodes"][0]["html"] if v["nodes"] else "")
            for v in result["violations"] if v["impact"] in impacts]
