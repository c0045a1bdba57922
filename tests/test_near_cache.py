"""The per-process near-cache: repeated reads cost no Redis round trip, and no process
ever serves an old value after a write was acknowledged (Redis pub/sub keeps it correct)."""
import signal
import threading
import time

import pytest
import redis as redis_lib
import requests
from hamcrest import assert_that, equal_to, greater_than, less_than

from backend import create_app
from tests.api import add_task, create_day
from tests.conftest import database_uri
from tests.stack import run_backend

DATE = "2026-03-02"


def commands_processed(redis_url):
    return redis_lib.Redis.from_url(redis_url).info("stats")["total_commands_processed"]


def warm(client, path, near):
    """Read `path` until this process serves it from memory (its lease needs one PING)."""
    deadline = time.monotonic() + 5
    before = near.stats["hits"]
    while near.stats["hits"] == before:
        assert time.monotonic() < deadline, "the near-cache never served"
        assert_that(client.get(path).status_code, equal_to(200))
        time.sleep(0.01)


@pytest.fixture
def second_app(app, mongodb_uri, redis_url, database_name):
    """Another backend process on the same database and Redis (another gunicorn worker)."""
    other = create_app({"MONGODB_URI": database_uri(mongodb_uri, database_name), "REDIS_URL": redis_url,
                        "TESTING": True, "AUTH_DEV_USER_HEADER": True})
    yield other
    other.extensions["kyb.mongo"].close()


def near(app):
    return app.extensions["kyb.cache"].near


def test_a_repeated_read_is_served_from_memory_without_redis(client, app, commands, database_name):
    create_day(client, DATE)
    add_task(client, DATE, "read me often")
    warm(client, f"/api/v1/days/{DATE}", near(app))
    cache = app.extensions["kyb.cache"]
    redis_reads, memory_hits = cache.stats["hits"] + cache.stats["misses"], near(app).stats["hits"]
    before_db = commands.count(database_name)
    for _ in range(50):
        assert_that(client.get(f"/api/v1/days/{DATE}").get_json()["tasks"][0]["text"], equal_to("read me often"))
    assert_that(near(app).stats["hits"] - memory_hits, equal_to(50))
    assert_that(cache.stats["hits"] + cache.stats["misses"], equal_to(redis_reads))
    assert_that(commands.count(database_name) - before_db, equal_to(0))


def test_a_write_in_one_process_is_seen_at_once_by_another(client, app, second_app):
    other = second_app.test_client()
    create_day(client, DATE)
    task = add_task(client, DATE, "tick me")
    path = f"/api/v1/days/{DATE}"
    warm(other, path, near(second_app))
    hits = near(second_app).stats["hits"]
    stale = 0
    for i in range(60):
        changed = client.patch(f"/api/v1/tasks/{task['id']}", json={"text": f"edit {i}"})
        assert_that(changed.status_code, equal_to(200))
        stale += other.get(path).get_json()["tasks"][0]["text"] != f"edit {i}"
        other.get(path)  # a repeat, served from memory again until the next write
    assert_that(stale, equal_to(0))
    assert_that(near(second_app).stats["hits"] - hits, greater_than(30))
    assert_that(near(second_app).stats["invalidations"], greater_than(59))


def test_no_process_trusts_its_memory_while_redis_hangs(client, app, second_app, redis_server):
    other = second_app.test_client()
    create_day(client, DATE)
    task = add_task(client, DATE, "before")
    path = f"/api/v1/days/{DATE}"
    warm(other, path, near(second_app))
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        changed = client.patch(f"/api/v1/tasks/{task['id']}", json={"text": "during the hang"})
        answered_after = time.monotonic() - started
        seen = other.get(path).get_json()["tasks"][0]["text"]
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert_that(changed.status_code, equal_to(200))
    assert_that(seen, equal_to("during the hang"))
    # The writer waited out the other processes' lease before it answered.
    assert_that(answered_after, greater_than(0.2))


def test_a_lost_subscription_empties_the_near_cache(client, app, second_app, redis_server):
    other = second_app.test_client()
    create_day(client, DATE)
    task = add_task(client, DATE, "before")
    path = f"/api/v1/days/{DATE}"
    warm(other, path, near(second_app))
    redis_server.stop()  # every subscription breaks; messages sent meanwhile are lost
    try:
        client.patch(f"/api/v1/tasks/{task['id']}", json={"text": "while redis was away"})
    finally:
        redis_server.start()
    assert_that(other.get(path).get_json()["tasks"][0]["text"], equal_to("while redis was away"))
    assert_that(near(second_app).stats["resets"], greater_than(0))


@pytest.fixture(scope="module", params=["50", "2"], ids=["timeout-50ms", "timeout-2ms"])
def workers(request, mongodb_uri, redis_server, redis_url, tmp_path_factory):
    """The backend under gunicorn with three workers, each with its own near-cache; with a
    2 ms Redis timeout reads keep timing out and opening the circuit, which must not let
    an invalidation be lost."""
    yield from run_backend(mongodb_uri, redis_server, redis_url, tmp_path_factory, WEB_CONCURRENCY="3",
                           REDIS_TIMEOUT_MS=request.param)


def test_workers_serve_repeated_reads_from_memory(workers, redis_url):
    api = f"{workers.url}/api/v1"
    date = "2026-03-09"
    requests.post(f"{api}/days", json={"date": date}, timeout=10).raise_for_status()
    store = redis_lib.Redis.from_url(redis_url)
    with requests.Session() as http:  # one connection: one worker answers them all
        for _ in range(30):  # it fills its memory and gets its lease
            http.get(f"{api}/days/{date}", timeout=10).raise_for_status()
        # Take the cached day out of Redis behind the worker's back (no invalidation): a read
        # that went to Redis would miss, load MongoDB and put the key back.
        values = [key for key in store.scan_iter(f"kyb:*:day:{date}:*") if not key.endswith(b":gen")]
        assert_that(len(values), equal_to(1))
        store.delete(*values)
        for _ in range(200):
            assert_that(http.get(f"{api}/days/{date}", timeout=10).json()["date"], equal_to(date))
    assert_that(store.exists(*values), equal_to(0))


def test_no_worker_serves_an_old_day_after_a_write_was_acknowledged(workers):
    api = f"{workers.url}/api/v1"
    requests.post(f"{api}/days", json={"date": DATE}, timeout=10).raise_for_status()
    task = requests.post(f"{api}/days/{DATE}/tasks", json={"text": "v0"}, timeout=10).json()
    stop = threading.Event()

    def keep_reading():  # keeps every worker's memory filled with the day
        with requests.Session() as http:
            while not stop.is_set():
                http.get(f"{api}/days/{DATE}", timeout=10)

    readers = [threading.Thread(target=keep_reading) for _ in range(4)]
    for reader in readers:
        reader.start()
    stale = reads = 0
    try:
        for i in range(1, 101):
            changed = requests.patch(f"{api}/tasks/{task['id']}", json={"text": f"v{i}"}, timeout=10)
            assert_that(changed.status_code, equal_to(200))
            for _ in range(3):  # new connections: any worker may answer
                reads += 1
                stale += requests.get(f"{api}/days/{DATE}", timeout=10).json()["tasks"][0]["text"] != f"v{i}"
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert_that((reads, stale), equal_to((300, 0)))


TTL_SECONDS = 1


@pytest.mark.parametrize("app_config", [{"CACHE_TTL_SECONDS": TTL_SECONDS}])
def test_a_change_made_behind_the_apps_back_is_served_within_the_cache_ttl(client, app, mongodb_uri,
                                                                            database_name):
    create_day(client, DATE)
    task = add_task(client, DATE, "as the app wrote it")
    path = f"/api/v1/days/{DATE}"
    warm(client, path, near(app))
    # An admin fixes the text in the database itself: no invalidation is published.
    from bson import ObjectId
    from pymongo import MongoClient

    with MongoClient(database_uri(mongodb_uri, database_name)) as mongo:
        changed_at = time.monotonic()
        mongo.get_default_database().tasks.update_one({"_id": ObjectId(task["id"])},
                                                      {"$set": {"text": "fixed by an admin"}})
    assert_that(client.get(path).get_json()["tasks"][0]["text"], equal_to("as the app wrote it"))
    while client.get(path).get_json()["tasks"][0]["text"] != "fixed by an admin":
        assert_that(time.monotonic() - changed_at, less_than(TTL_SECONDS + 1.0))
        time.sleep(0.02)
    # Neither Redis nor this process's memory kept the old day past the TTL of Redis's copy.
    assert_that(time.monotonic() - changed_at, less_than(TTL_SECONDS + 1.0))


def test_forget_cache_after_a_change_behind_the_apps_back_is_seen_by_every_process_at_once(
        client, app, second_app, mongodb_uri, database_name):
    create_day(client, DATE)
    task = add_task(client, DATE, "as the app wrote it")
    path = f"/api/v1/days/{DATE}"
    other = second_app.test_client()
    warm(client, path, near(app))
    warm(other, path, near(second_app))
    from bson import ObjectId
    from pymongo import MongoClient

    with MongoClient(database_uri(mongodb_uri, database_name)) as mongo:
        mongo.get_default_database().tasks.update_one({"_id": ObjectId(task["id"])},
                                                      {"$set": {"text": "restored from a backup"}})
    assert_that(other.get(path).get_json()["tasks"][0]["text"], equal_to("as the app wrote it"))
    result = app.test_cli_runner().invoke(args=["forget-cache"])
    assert_that(result.exit_code, equal_to(0), result.output + repr(result.exception))
    # Neither process's memory nor Redis serves the old day after the command returned.
    for each in (client, other):
        assert_that(each.get(path).get_json()["tasks"][0]["text"], equal_to("restored from a backup"))
