import signal
import time

from hamcrest import assert_that, equal_to, greater_than, has_entries, less_than

from tests.api import add_task, create_day, import_seed


def test_a_repeated_day_read_is_served_from_redis(client, commands, database_name):
    import_seed(client)
    client.get("/api/v1/days/2020-03-19")
    before = commands.count(database_name)
    again = client.get("/api/v1/days/2020-03-19")
    assert_that(again.status_code, equal_to(200))
    assert_that(commands.count(database_name) - before, equal_to(0))


def test_repeated_stats_and_exports_are_served_from_redis(client, commands, database_name):
    import_seed(client)
    client.get("/api/v1/stats")
    client.get("/api/v1/export")
    before = commands.count(database_name)
    client.get("/api/v1/stats")
    client.get("/api/v1/export")
    assert_that(commands.count(database_name) - before, equal_to(0))


def test_a_write_invalidates_the_day_it_changed(client, commands, database_name):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "tick me")
    client.get("/api/v1/days/2026-03-02")
    client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    before = commands.count(database_name)
    day = client.get("/api/v1/days/2026-03-02").get_json()
    assert_that(commands.count(database_name) - before, greater_than(0))
    assert_that(day["tasks"][0]["done"], equal_to(True))


def test_a_write_leaves_other_days_cached(client, commands, database_name):
    create_day(client, "2026-03-02")
    create_day(client, "2026-03-03")
    client.get("/api/v1/days/2026-03-03")
    add_task(client, "2026-03-02", "only this day changes")
    before = commands.count(database_name)
    client.get("/api/v1/days/2026-03-03")
    assert_that(commands.count(database_name) - before, equal_to(0))


def test_a_304_answers_a_repeat_view_with_the_same_etag(client):
    create_day(client, "2026-03-02")
    first = client.get("/api/v1/days/2026-03-02")
    again = client.get("/api/v1/days/2026-03-02", headers={"If-None-Match": first.headers["ETag"]})
    assert_that(again.status_code, equal_to(304))


def test_requests_are_answered_correctly_while_redis_is_down(client, redis_server):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "survives")
    client.get("/api/v1/days/2026-03-02")
    redis_server.stop()
    ticked = client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    day = client.get("/api/v1/days/2026-03-02")
    ready = client.get("/readyz")
    assert_that(ticked.status_code, equal_to(200))
    assert_that(day.get_json()["tasks"][0]["done"], equal_to(True))
    assert_that(ready.get_json(), has_entries(status="ok", database="ok", cache="degraded"))


def test_the_cache_is_used_again_and_not_stale_when_redis_returns(client, redis_server, commands, database_name):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "changed during the outage")
    client.get("/api/v1/days/2026-03-02")  # cached with done = false
    port = redis_server.port
    redis_server.process.send_signal(signal.SIGSTOP)  # Redis hangs but keeps its data
    try:
        client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    time.sleep(1.1)  # the circuit stays open for a second after an error
    day = client.get("/api/v1/days/2026-03-02").get_json()
    assert_that(day["tasks"][0]["done"], equal_to(True))
    before = commands.count(database_name)
    client.get("/api/v1/days/2026-03-02")
    assert_that(commands.count(database_name) - before, equal_to(0))
    assert_that(client.get("/readyz").get_json()["cache"], equal_to("ok"))
    assert_that(port, equal_to(redis_server.port))


def test_a_hanging_redis_costs_a_request_tens_of_milliseconds_not_seconds(client, redis_server):
    create_day(client, "2026-03-02")
    redis_server.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    try:
        started = time.monotonic()
        response = client.get("/api/v1/days/2026-03-02")
        elapsed = time.monotonic() - started
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert_that(response.status_code, equal_to(200))
    assert_that(elapsed, less_than(1.0))


def test_a_cached_day_is_sent_as_cached_with_its_own_version(client):
    create_day(client, "2026-03-02")
    add_task(client, "2026-03-02", 'fake ,"version":1 and {"version":2}')
    first = client.get("/api/v1/days/2026-03-02")  # loaded from MongoDB
    again = client.get("/api/v1/days/2026-03-02")  # the cached JSON text, not decoded
    assert_that(again.get_json(), equal_to(first.get_json()))
    assert_that(again.headers["ETag"], equal_to(f'"{first.get_json()["version"]}"'))
    assert_that(again.headers["Content-Type"], equal_to("application/json"))
