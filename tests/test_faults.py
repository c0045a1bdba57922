"""Faults a cluster sees every day, with real processes: concurrent writers, a rolling
restart, Redis and MongoDB going away under load. Every loop is bounded."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hamcrest import assert_that, equal_to, greater_than

from tests.conftest import database_uri
from tests.servers import gunicorn


@pytest.fixture
def backend(mongodb_uri, redis_server, redis_url, database_name, tmp_path):
    """The backend under gunicorn, three workers, on a fresh database."""
    if redis_server.process is None:
        redis_server.start()
    server = gunicorn("backend", {"MONGODB_URI": database_uri(mongodb_uri, database_name), "REDIS_URL": redis_url,
                                  "LOG_LEVEL": "WARNING", "MONGODB_TIMEOUT_MS": "1000",
                                  "RATE_LIMIT": "100000 per minute", "AUTH_DEV_USER_HEADER": "true"},
                     tmp_path / "backend.log")
    server.start()
    wait_ready(server.url)
    yield server
    server.stop()


def wait_ready(url, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready")


def test_twenty_concurrent_writers_lose_no_update(backend):
    api = f"{backend.url}/api/v1"
    requests.post(f"{api}/days", json={"date": "2026-03-02"}, timeout=10)
    task = requests.post(f"{api}/days/2026-03-02/tasks", json={"text": "count 0"}, timeout=10).json()
    acknowledged = []

    def writer(_):
        session = requests.Session()
        for _ in range(200):  # bounded retries
            current = session.get(f"{api}/tasks/{task['id']}", timeout=10)
            count = int(current.json()["text"].split()[1])
            answer = session.patch(f"{api}/tasks/{task['id']}", json={"text": f"count {count + 1}"},
                                   headers={"If-Match": current.headers["ETag"]}, timeout=10)
            if answer.status_code == 200:
                acknowledged.append(count + 1)
                return
            assert answer.status_code == 412, answer.text
        raise AssertionError("a writer never got through")

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(writer, range(20)))
    final = requests.get(f"{api}/tasks/{task['id']}", timeout=10).json()
    assert_that(len(acknowledged), equal_to(20))
    assert_that(sorted(acknowledged), equal_to(list(range(1, 21))))
    assert_that(final["text"], equal_to("count 20"))


def test_a_claim_left_by_a_dead_writer_is_broken_after_a_while(app, client):
    import datetime as dt

    from backend.db import get_db
    from tests.api import add_task, create_day

    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "stuck?")
    with app.app_context():
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        get_db().claims.insert_one({"_id": f"tasks:{task['id']}:1", "at": old})
    response = client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    assert_that(response.status_code, equal_to(200))


class Load:
    """Threads sending a mix of reads and writes until stopped; every outcome is counted."""

    def __init__(self, url, threads=6, limit=3000):
        self.api = f"{url}/api/v1"
        self.outcomes = []  # (kind, status or exception name, task id)
        self._stop = threading.Event()
        self._limit = limit
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self, n):
        sent = 0
        while not self._stop.is_set() and sent < self._limit:
            sent += 1
            kind = "write" if sent % 5 == 0 else "read"
            try:
                if kind == "write":
                    response = requests.post(f"{self.api}/days/2026-03-02/tasks", json={"text": f"t{n}-{sent}"},
                                             headers={"Connection": "close"}, timeout=10)
                    task_id = response.json().get("id") if response.status_code == 201 else None
                else:
                    response = requests.get(f"{self.api}/days/2026-03-02", headers={"Connection": "close"},
                                            timeout=10)
                    task_id = None
                self.outcomes.append((kind, response.status_code, task_id))
            except requests.ConnectionError as exc:
                # Refused, or reset while still in the listen backlog: never reached the app.
                unreached = "Connection refused" in str(exc) or "Connection reset by peer" in str(exc)
                self.outcomes.append((kind, "refused" if unreached else f"dropped: {exc}", None))
            except requests.Timeout:
                self.outcomes.append((kind, "timeout", None))
            time.sleep(0.005)

    def count(self, predicate):
        return sum(1 for outcome in self.outcomes if predicate(outcome))


def test_killing_redis_under_load_costs_no_request_and_the_cache_comes_back(backend, redis_server, redis_url):
    import redis as redis_lib

    requests.post(f"{backend.url}/api/v1/days", json={"date": "2026-03-02"}, timeout=10)
    with Load(backend.url) as load:
        time.sleep(1)
        redis_server.process.kill()
        redis_server.process.wait()
        redis_server.process = None
        time.sleep(1.5)
        redis_server.start()
        time.sleep(2)
    server_errors = load.count(lambda o: not isinstance(o[1], int) or o[1] >= 500)
    print(f"redis killed: {len(load.outcomes)} requests, {server_errors} failed")
    assert_that(server_errors, equal_to(0))
    assert_that(len(load.outcomes), greater_than(100))
    # Back in use: a day view is cached again after the outage.
    requests.get(f"{backend.url}/api/v1/days/2026-03-02", timeout=10)
    assert_that(len(redis_lib.Redis.from_url(redis_url).keys("kyb:*:day:2026-03-02:*")), greater_than(0))


@pytest.fixture
def own_database(tmp_path):
    """A FerretDB of this test's own, to stop and start again on the same port and data."""
    from tests import servers

    server = servers.ferretdb(tmp_path / "ferretdb").start()
    yield server
    server.stop()


def test_stopping_the_database_under_load_answers_quick_503s_and_loses_no_acknowledged_write(
        own_database, redis_url, tmp_path):
    from pymongo import MongoClient

    uri = f"mongodb://127.0.0.1:{own_database.port}/kyb_fault"
    server = gunicorn("backend", {"MONGODB_URI": uri, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING",
                                  "MONGODB_TIMEOUT_MS": "500", "RATE_LIMIT": "100000 per minute",
                                  "AUTH_DEV_USER_HEADER": "true"}, tmp_path / "backend.log")
    server.start()
    try:
        wait_ready(server.url)
        requests.post(f"{server.url}/api/v1/days", json={"date": "2026-03-02"}, timeout=10)
        with Load(server.url, limit=2000) as load:
            time.sleep(1)
            own_database.stop()
            time.sleep(2)
            own_database.start()
            time.sleep(2)
        statuses = [o[1] for o in load.outcomes]
        acknowledged = {o[2] for o in load.outcomes if o[0] == "write" and o[1] == 201}
        unavailable = statuses.count(503)
        other_failures = [s for s in statuses if not isinstance(s, int) or (s >= 500 and s != 503)]
        with MongoClient(uri) as client:
            stored = {str(t["_id"]) for t in client.kyb_fault.tasks.find({}, {"_id": 1})}
        print(f"database stopped: {len(statuses)} requests, {unavailable} answered 503, "
              f"{len(acknowledged)} writes acknowledged, {len(acknowledged & stored)} found afterwards")
        assert_that(other_failures, equal_to([]))
        assert_that(unavailable, greater_than(0))
        assert_that(acknowledged - stored, equal_to(set()))
        # Recovered without a restart: the last requests succeeded.
        assert_that(requests.get(f"{server.url}/readyz", timeout=10).status_code, equal_to(200))
        assert_that(load.outcomes[-1][1], equal_to(200 if load.outcomes[-1][0] == "read" else 201))
    finally:
        server.stop()


def test_sigterm_during_load_fails_no_accepted_request(backend):
    import signal

    from bench.worklog import generate

    requests.post(f"{backend.url}/api/v1/days", json={"date": "2026-03-02"}, timeout=10)
    slow = {}

    def import_in_flight():
        slow["response"] = requests.post(f"{backend.url}/api/v1/import?mode=merge", data=generate(2000),
                                         headers={"Content-Type": "text/markdown"}, timeout=60)

    with Load(backend.url, threads=4) as load:
        time.sleep(1)
        importer = threading.Thread(target=import_in_flight)
        importer.start()
        time.sleep(0.3)  # the import is being served when the signal comes
        backend.process.send_signal(signal.SIGTERM)  # what a rolling update does after preStop
        backend.process.wait(30)
        importer.join(60)
        time.sleep(0.5)
    accepted = [o for o in load.outcomes if o[1] != "refused"]
    failed = [o for o in accepted if not isinstance(o[1], int) or o[1] >= 500]
    print(f"SIGTERM: {len(accepted)} requests accepted, {len(failed)} failed, "
          f"{load.count(lambda o: o[1] == 'refused')} refused after shutdown")
    assert_that(failed, equal_to([]))
    assert_that(len(accepted), greater_than(50))
    assert_that(slow["response"].status_code, equal_to(201))
    backend.process = None
