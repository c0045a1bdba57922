"""Flags from a ConfigMap volume laid out as kubelet writes it, changed while the app runs."""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hamcrest import assert_that, contains_string, equal_to, has_entries, is_, less_than, none, not_none

from tests.api import create_day, import_seed
from tests.conftest import database_uri
from tests.kubelet import ConfigMapVolume
from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = json.loads((ROOT / "config" / "flags.json").read_text())


def document(**defaults):
    """The shipped flag document with some flags' default variants changed."""
    doc = json.loads(json.dumps(SHIPPED))
    for name, variant in defaults.items():
        doc["flags"][name]["defaultVariant"] = variant
    return json.dumps(doc)


@pytest.fixture
def volume(tmp_path):
    return ConfigMapVolume(tmp_path / "flags", {"flags.json": document()})


@pytest.fixture
def app_config(volume):
    return {"FLAGS_FILE": str(volume.root / "flags.json")}


def until(check, timeout=2.0):
    """Poll `check` until it is true; the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


def flag(client, name, user="demo"):
    return client.get("/api/v1/flags", headers={"X-User-Id": user}).get_json()["flags"][name]


def test_the_read_only_switch_refuses_writes_and_keeps_reads(client, volume):
    create_day(client, "2026-03-02")
    volume.update({"flags.json": document(read_only="on")})
    until(lambda: flag(client, "read_only"))
    refused = client.post("/api/v1/days", json={"date": "2026-03-03"})
    assert_that(refused.status_code, equal_to(503))
    assert_that(refused.get_json(), has_entries(code="read_only", detail=contains_string("read-only")))
    assert_that(client.get("/api/v1/days/2026-03-02").status_code, equal_to(200))
    assert_that(client.get("/api/v1/days/2026-03-03").status_code, equal_to(404))


def test_switching_read_only_off_again_lets_writes_through(client, volume):
    volume.update({"flags.json": document(read_only="on")})
    until(lambda: flag(client, "read_only"))
    volume.update({"flags.json": document(read_only="off")})
    until(lambda: not flag(client, "read_only"))
    assert_that(client.post("/api/v1/days", json={"date": "2026-03-03"}).status_code, equal_to(201))


@pytest.mark.parametrize("name, request_args", [
    ("markdown_import", ("post", "/api/v1/import?mode=merge", {"data": b"- [ ] x\n", "content_type": "text/markdown"})),
    ("stats", ("get", "/api/v1/stats", {})),
    ("carry_over", ("post", "/api/v1/days/2020-03-20/carry-over", {"json": {"to": "2020-03-24"}})),
])
def test_a_feature_switched_off_is_refused_with_a_clear_message(client, volume, name, request_args):
    import_seed(client)
    volume.update({"flags.json": document(**{name: "off"})})
    until(lambda: not flag(client, name))
    method, path, kwargs = request_args
    response = getattr(client, method)(path, **kwargs)
    assert_that(response.status_code, equal_to(403))
    assert_that(response.get_json(), has_entries(code="feature_off", detail=contains_string(name)))


def test_the_theme_is_a_string_flag(client, volume):
    volume.update({"flags.json": document(ui_theme="dark")})
    assert_that(until(lambda: flag(client, "ui_theme") == "dark"), less_than(2.0))


def test_the_rollout_flag_is_stable_per_user_and_splits_users(client):
    users = [f"user-{n}" for n in range(40)]
    first = [flag(client, "progress_bar", u) for u in users]
    assert_that([flag(client, "progress_bar", u) for u in users], equal_to(first))
    assert_that(set(first), equal_to({True, False}))


@pytest.mark.parametrize("bad", ["{not json", json.dumps({"flags": {"read_only": {"state": "ENABLED"}}}),
                                 json.dumps({"flags": {"read_only": dict(SHIPPED["flags"]["read_only"],
                                                                         description="extra key")}})])
def test_a_bad_update_keeps_the_last_good_flags_and_says_why(client, volume, bad):
    volume.update({"flags.json": document(read_only="on")})
    until(lambda: flag(client, "read_only"))
    good_version = client.get("/api/v1/flags").get_json()["version"]
    volume.update({"flags.json": bad})
    until(lambda: client.get("/api/v1/flags").get_json()["error"] is not None)
    state = client.get("/api/v1/flags").get_json()
    assert_that(state, has_entries(version=good_version, error=not_none()))
    assert_that(state["flags"]["read_only"], is_(True))
    assert_that(client.get("/readyz").get_json()["flags"], has_entries(version=good_version, error=not_none()))
    volume.update({"flags.json": document()})
    until(lambda: client.get("/api/v1/flags").get_json()["error"] is None)
    assert_that(flag(client, "read_only"), is_(False))


def test_a_deleted_flag_file_keeps_the_last_good_flags(client, volume):
    volume.update({"flags.json": document(ui_theme="contrast")})
    until(lambda: flag(client, "ui_theme") == "contrast")
    volume.remove("flags.json")
    until(lambda: client.get("/api/v1/flags").get_json()["error"] is not None)
    assert_that(flag(client, "ui_theme"), equal_to("contrast"))


def test_the_flags_version_is_a_hash_of_the_file_in_force(client, volume):
    before = client.get("/readyz").get_json()["flags"]
    volume.update({"flags.json": document(ui_theme="dark")})
    until(lambda: client.get("/readyz").get_json()["flags"]["version"] != before["version"])
    assert_that(before["error"], is_(none()))


@pytest.fixture
def gunicorn_backend(volume, mongodb_uri, redis_url, database_name):
    """The backend under gunicorn with three workers, reading flags from the volume."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY="3", MONGODB_URI=database_uri(mongodb_uri, database_name),
               REDIS_URL=redis_url, FLAGS_FILE=str(volume.root / "flags.json"), LOG_LEVEL="WARNING",
               RATE_LIMIT="100000 per minute", AUTH_DEV_USER_HEADER="true")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                                "backend:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


def test_every_gunicorn_worker_sees_a_kubelet_swap_within_two_seconds(gunicorn_backend, volume):
    def read_only():
        # A new connection per request, many at once, so every worker answers some.
        return requests.get(f"{gunicorn_backend}/api/v1/flags", headers={"Connection": "close"},
                            timeout=30).json()["flags"]["read_only"]

    with ThreadPoolExecutor(12) as pool:
        assert_that(all(pool.map(lambda _: not read_only(), range(36))), is_(True))
        volume.update({"flags.json": document(read_only="on")})
        swapped = time.monotonic()
        until(lambda: all(pool.map(lambda _: read_only(), range(36))), timeout=10.0)
    assert_that(time.monotonic() - swapped, less_than(2.0))
