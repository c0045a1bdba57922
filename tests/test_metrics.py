"""Prometheus metrics, scraped from the real apps under gunicorn with two workers each
(prometheus_client's multiprocess mode, as on Kubernetes): counts are summed over the
workers, the cache, MongoDB and Redis are seen, no label names a user's data, and the
Grafana dashboard asks only for metrics the apps export."""
import json
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from hamcrest import (assert_that, contains_string, empty, equal_to, greater_than_or_equal_to, has_item, is_in,
                      is_not, starts_with)
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests import servers
from tests.api import SEED
from tests.stack import AppServer, frontend_settings, run_backend

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "k8s" / "components" / "observability" / "grafana" / "kyb-dashboard.json"
DAY = "2026-11-20"
WAIT_SECONDS = 10
STALE = "counter_999999.db"


def metrics_settings(tmp_path_factory, name):
    """Two workers sharing their values in a directory of their own, /metrics on a port of its own."""
    port = servers.free_port()
    return port, {"WEB_CONCURRENCY": "2", "METRICS_PORT": str(port),
                  "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp(f"{name}-metrics"))}


@pytest.fixture(scope="module")
def backend(mongodb_uri, redis_server, redis_url, tmp_path_factory):
    port, settings = metrics_settings(tmp_path_factory, "backend")
    (Path(settings["PROMETHEUS_MULTIPROC_DIR"]) / STALE).write_bytes(b"left by an earlier run")
    for server in run_backend(mongodb_uri, redis_server, redis_url, tmp_path_factory, **settings):
        server.metrics_url = f"http://127.0.0.1:{port}/metrics"
        server.metrics_dir = Path(settings["PROMETHEUS_MULTIPROC_DIR"])
        yield server


@pytest.fixture(scope="module")
def frontend(backend, redis_server, tmp_path_factory):
    port, settings = metrics_settings(tmp_path_factory, "frontend")
    server = AppServer("frontend", frontend_settings(redis_server, BACKEND_URL=backend.url, LOG_LEVEL="WARNING",
                                                     **settings),
                       tmp_path_factory.mktemp("frontend") / "frontend.log")
    server.metrics_url = f"http://127.0.0.1:{port}/metrics"
    yield server
    server.stop()


@pytest.fixture
def user():
    """A user of this test alone, so nothing cached by another test answers for it."""
    return {"X-User-Id": f"metrics-{uuid.uuid4().hex[:12]}"}


def scrape(server):
    """{(sample name, ((label, value), ...)): value} of one scrape of the server's /metrics."""
    response = requests.get(server.metrics_url, timeout=10)
    assert response.status_code == 200, response.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels):
    """The sum over every sample of `name` whose labels include `labels`."""
    return sum(v for (sample, sample_labels), v in samples.items()
               if sample == name and set(labels.items()) <= set(sample_labels))


def per_worker(directory, name, **labels):
    """{worker pid: value} of a counter, read from each worker's file on its own."""
    values = {}
    for path in directory.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            values[int(path.stem.split("_")[-1])] = registry.get_sample_value(name, labels) or 0.0
    return values


def api(backend, method, path, user, headers=None, **kwargs):
    response = requests.request(method, f"{backend.url}/api/v1{path}", headers={**user, **(headers or {})},
                                timeout=10, **kwargs)
    assert response.status_code < 400, (response.status_code, response.text)
    return response


def wait_until(condition, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not after {WAIT_SECONDS} s: {what}"
        time.sleep(0.05)


HEALTHZ = {"route": "/healthz", "method": "GET", "status": "2xx"}


def test_request_counts_are_summed_over_every_worker(backend):
    before = scrape(backend)
    served = 0
    # Each call on a fresh connection; the kernel picks the worker that accepts it.
    while served == 0 or (served < 400 and len([n for n in per_worker(
            backend.metrics_dir, "kyb_backend_http_requests_total", **HEALTHZ).values() if n]) < 2):
        for _ in range(20):
            assert requests.get(f"{backend.url}/healthz", timeout=5).status_code == 200
        served += 20
    after = scrape(backend)
    workers = per_worker(backend.metrics_dir, "kyb_backend_http_requests_total", **HEALTHZ)

    assert_that(len([n for n in workers.values() if n]), equal_to(2))
    assert_that(value(after, "kyb_backend_http_requests_total", **HEALTHZ)
                - value(before, "kyb_backend_http_requests_total", **HEALTHZ), equal_to(served))
    assert_that(value(after, "kyb_backend_http_requests_total", **HEALTHZ), equal_to(sum(workers.values())))
    assert_that(value(after, "kyb_backend_http_request_duration_seconds_count", **HEALTHZ),
                equal_to(value(after, "kyb_backend_http_requests_total", **HEALTHZ)))


def test_the_metrics_directory_is_emptied_when_the_server_starts(backend):
    assert not (backend.metrics_dir / STALE).exists()
    assert_that(sorted(path.name.split("_")[0] for path in backend.metrics_dir.iterdir()),
                has_item("counter"))


def test_the_request_being_answered_is_the_one_in_flight(backend):
    # The scrape itself is in flight while it is answered; nothing else is.
    assert_that(value(scrape(backend), "kyb_backend_http_requests_in_flight"), equal_to(1.0))


def test_a_worker_that_exits_keeps_its_counts_and_drops_its_in_flight_gauge(backend):
    requests.get(f"{backend.url}/healthz", timeout=5)
    before = value(scrape(backend), "kyb_backend_http_requests_total", **HEALTHZ)
    gauges = sorted(backend.metrics_dir.glob("gauge_livesum_*.db"))
    pid = int(gauges[0].stem.split("_")[-1])

    os.kill(pid, signal.SIGTERM)

    wait_until(lambda: not gauges[0].exists(), "the exited worker's gauge file removed (child_exit)")
    wait_until(lambda: len(list(backend.metrics_dir.glob("gauge_livesum_*.db"))) == 2, "a new worker")
    assert (backend.metrics_dir / f"counter_{pid}.db").exists()
    after = scrape(backend)
    assert_that(value(after, "kyb_backend_http_requests_total", **HEALTHZ), equal_to(before))
    assert_that(value(after, "kyb_backend_http_requests_in_flight"), equal_to(1.0))


def test_metrics_answer_on_the_metrics_port_only(backend, frontend):
    metrics_port = backend.metrics_url.removesuffix("/metrics")

    assert_that(requests.get(f"{backend.url}/metrics", timeout=5).status_code, equal_to(404))
    assert_that(requests.get(f"{frontend.url}/metrics", timeout=5).status_code, equal_to(404))
    assert_that(requests.get(f"{metrics_port}/api/v1/days", timeout=5).status_code, equal_to(404))
    assert_that(requests.get(f"{metrics_port}/healthz", timeout=5).status_code, equal_to(404))


def test_a_read_is_a_cache_miss_then_a_hit(backend, user):
    api(backend, "POST", "/days", user, json={"date": DAY})
    first = scrape(backend)
    api(backend, "GET", f"/days/{DAY}", user)
    second = scrape(backend)
    api(backend, "GET", f"/days/{DAY}", user)
    third = scrape(backend)

    assert_that(total(second, "kyb_backend_cache_misses_total") - total(first, "kyb_backend_cache_misses_total"),
                greater_than_or_equal_to(1))
    assert_that(total(second, "kyb_backend_cache_hits_total"), equal_to(total(first, "kyb_backend_cache_hits_total")))
    assert_that(total(third, "kyb_backend_cache_hits_total") - total(second, "kyb_backend_cache_hits_total"),
                greater_than_or_equal_to(1))
    assert_that(total(third, "kyb_backend_cache_misses_total"),
                equal_to(total(second, "kyb_backend_cache_misses_total")))


def test_a_write_reaches_the_near_caches_as_an_invalidation(backend, user):
    api(backend, "POST", "/days", user, json={"date": DAY})
    for _ in range(10):  # fresh connections: every worker reads, and so listens for invalidations
        api(backend, "GET", f"/days/{DAY}", user)
    before = scrape(backend)
    api(backend, "PATCH", f"/days/{DAY}", user, json={"start": "09:00", "end": "17:00"})
    for _ in range(10):
        api(backend, "GET", f"/days/{DAY}", user)
    after = scrape(backend)

    assert_that(value(after, "kyb_backend_near_cache_invalidations_total")
                - value(before, "kyb_backend_near_cache_invalidations_total"), greater_than_or_equal_to(1))


def test_with_redis_down_redis_is_reported_down_and_cache_errors_are_counted(backend, redis_server, user):
    api(backend, "POST", "/days", user, json={"date": DAY})
    before = scrape(backend)
    assert_that(value(before, "kyb_backend_redis_up"), equal_to(1.0))
    redis_server.stop()
    try:
        api(backend, "GET", f"/days/{DAY}", user)  # served from MongoDB
        during = scrape(backend)
    finally:
        redis_server.start()

    assert_that(value(during, "kyb_backend_redis_up"), equal_to(0.0))
    assert_that(value(during, "kyb_backend_cache_errors_total") - value(before, "kyb_backend_cache_errors_total"),
                greater_than_or_equal_to(1))
    wait_until(lambda: value(scrape(backend), "kyb_backend_redis_up") == 1.0, "Redis reported up again")


def test_mongodb_commands_are_timed_by_command_name(backend, user):
    before = scrape(backend)
    api(backend, "POST", "/days", user, json={"date": DAY})
    after = scrape(backend)
    name = "kyb_backend_mongodb_command_duration_seconds_count"
    commands = {dict(labels)["command"] for (sample, labels), count in after.items()
                if sample == name and count > value(before, sample, **dict(labels))}

    assert_that(commands, has_item("insert"))
    for command in commands:
        assert re.fullmatch(r"[a-zA-Z]+", command), command


def test_an_import_is_measured_in_bytes_and_tasks(backend, user):
    before = scrape(backend)
    result = api(backend, "POST", "/import?mode=replace", user, data=SEED,
                 headers={"Content-Type": "text/markdown"}).json()
    after = scrape(backend)

    def grew(name):
        return value(after, name) - value(before, name)

    assert_that(grew("kyb_backend_import_size_bytes_count"), equal_to(1))
    assert_that(grew("kyb_backend_import_size_bytes_sum"), equal_to(len(SEED)))
    assert_that(grew("kyb_backend_import_tasks_sum"), equal_to(result["tasks"]))


def test_the_flags_version_in_force_is_a_label(backend):
    admin = {"X-User-Id": "metrics-admin"}  # in development mode every user is an admin
    version = api(backend, "GET", "/flags", admin).json()["version"]

    assert_that(value(scrape(backend), "kyb_backend_flags_version_info", version=version), equal_to(1.0))


def test_the_frontend_counts_its_pages_by_route_template(frontend):
    before = scrape(frontend)
    for _ in range(3):
        requests.get(f"{frontend.url}/healthz", timeout=5)
    requests.get(f"{frontend.url}/days/{DAY}", timeout=10, allow_redirects=False)
    requests.get(f"{frontend.url}/no/such/page/{uuid.uuid4().hex}", timeout=5, allow_redirects=False)
    after = scrape(frontend)

    def grew(**labels):
        return (total(after, "kyb_frontend_http_requests_total", **labels)
                - total(before, "kyb_frontend_http_requests_total", **labels))

    assert_that(grew(**HEALTHZ), equal_to(3))
    assert_that(grew(route="/days/<date:date>"), equal_to(1))
    assert_that(grew(route="unmatched"), equal_to(1))


def routes(app):
    return {rule.rule for rule in app.url_map.iter_rules()} | {"unmatched"}


def test_no_label_value_names_a_user_an_id_or_a_raw_path(backend, frontend, user):
    from backend import create_app as create_backend
    from frontend import create_app as create_frontend

    task = api(backend, "POST", "/backlog", user, json={"text": "label test"}).json()
    secret = uuid.uuid4().hex
    for path in (f"/api/v1/tasks/{task['id']}", f"/api/v1/days/{DAY}", f"/api/v1/{secret}"):
        requests.get(f"{backend.url}{path}", headers=user, timeout=5)
    for path in (f"/days/{DAY}", f"/tasks/{task['id']}", f"/{secret}"):
        requests.get(f"{frontend.url}{path}", timeout=10, allow_redirects=False)
    backend_app = create_backend({"TESTING": True})
    backend_app.extensions["kyb.mongo"].close()
    known = {"backend": routes(backend_app), "frontend": routes(create_frontend({"TESTING": True}))}

    for app, server in (("backend", backend), ("frontend", frontend)):
        for (name, labels), _ in scrape(server).items():
            if not name.startswith("kyb_"):
                continue
            for label, text in labels:
                for private in (task["id"], user["X-User-Id"], DAY, secret):
                    assert private not in text, (name, label, text)
                if label == "route":
                    assert_that(text, is_in(known[app]))


@pytest.fixture
def app_config():
    return {"RATE_LIMIT": "2 per minute", "AUTH_DEV_USER_HEADER": False}


def test_metrics_need_no_sign_in_and_are_never_rate_limited(app):
    client = app.test_client()
    refused = [client.get("/api/v1/days").status_code for _ in range(3)]

    answers = [client.get("/metrics") for _ in range(3)]

    assert_that(refused, equal_to([401, 401, 429]))
    for answer in answers:
        assert_that(answer.status_code, equal_to(200))
        assert_that(answer.content_type, starts_with("text/plain"))
        assert_that(answer.get_data(as_text=True), contains_string("kyb_backend_http_requests_total"))


def test_the_frontends_metrics_need_no_sign_in():
    from frontend import create_app

    client = create_app({"TESTING": True, "SECRET_KEY": "metrics-test"}).test_client()

    assert_that(client.get("/backlog").status_code, equal_to(302))  # a page sends the visitor to sign in
    assert_that(client.get("/metrics").status_code, equal_to(200))


def dashboard_metrics():
    """Every metric name the Grafana dashboard's queries use."""
    exprs = [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]
    return {name for expr in exprs for name in re.findall(r"\bkyb_[a-z0-9_]+", expr)}


def test_the_dashboard_asks_only_for_metrics_the_apps_export(backend, frontend, user):
    api(backend, "POST", "/days", user, json={"date": DAY})
    api(backend, "GET", f"/days/{DAY}", user)
    api(backend, "GET", f"/days/{DAY}", user)
    requests.get(f"{frontend.url}/healthz", timeout=5)
    exported = {name for name, _ in scrape(backend)} | {name for name, _ in scrape(frontend)}

    used = dashboard_metrics()

    assert_that(used, is_not(empty()))
    assert_that(sorted(used - exported), empty())
