"""Per-user rate limits: 429 with Retry-After past the rate, shared in Redis through leases of slots,
kept when Redis is down."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib
from hamcrest import (assert_that, empty, equal_to, greater_than, greater_than_or_equal_to, has_key, is_in, is_not,
                      less_than, less_than_or_equal_to)

PROBLEM = "application/problem+json"


@pytest.fixture
def app_config():
    return {"RATE_LIMIT": "5 per minute"}


def spend(client, user, n):
    return [client.get("/api/v1/days", headers={"X-User-Id": user}).status_code for _ in range(n)]


def test_past_the_rate_a_user_gets_429_with_retry_after(client):
    assert_that(spend(client, "ann", 5), equal_to([200] * 5))
    refused = client.get("/api/v1/days", headers={"X-User-Id": "ann"})
    assert_that(refused.status_code, equal_to(429))
    assert_that(refused.mimetype, equal_to(PROBLEM))
    assert_that(int(refused.headers["Retry-After"]), greater_than(0))


def test_one_users_rate_does_not_limit_another(client):
    spend(client, "ann", 6)
    assert_that(client.get("/api/v1/days", headers={"X-User-Id": "bob"}).status_code, equal_to(200))


def lease_round_trips(server):
    """How many leases Redis gave out: the lease script's INCRBY (Redis counts a script's commands;
    nothing else here increments)."""
    return server.info("commandstats").get("cmdstat_incrby", {}).get("calls", 0)


def test_near_the_limit_every_request_is_counted_in_redis_as_it_comes(client, redis_url):
    server = redis_lib.Redis.from_url(redis_url)
    server.config_resetstat()

    spend(client, "ann", 5)

    # 5 per minute: a tenth of what is left is less than one, so each lease is one slot.
    assert_that(lease_round_trips(server), equal_to(5))


def test_a_busy_user_costs_redis_a_round_trip_per_lease_not_per_request(app, redis_url):
    from backend import create_app

    busy = create_app(dict(app.config, RATE_LIMIT="100000 per minute")).test_client()
    server = redis_lib.Redis.from_url(redis_url)
    server.config_resetstat()

    assert_that(set(spend(busy, "ann", 300)), equal_to({200}))

    # Leases of 1, 2, 4, ... 64 slots, then 64 at a time: 10 round trips for 300 requests.
    assert_that(lease_round_trips(server), equal_to(10))
    assert_that(server.info("commandstats"), is_not(has_key("cmdstat_ttl")))
    assert_that(int(next(iter(server.mget(server.keys("kyb-limit:user:ann:*"))))), equal_to(1 + 2 + 4 + 8 + 16 + 32 + 64 * 4))


def test_workers_sharing_a_limit_never_admit_more_than_it_and_waste_little(app):
    """Three workers take turns with one user's requests, each with its own leases."""
    from backend import create_app

    workers = [create_app(dict(app.config, RATE_LIMIT="200 per minute")).test_client() for _ in range(3)]
    statuses = [workers[n % 3].get("/api/v1/days", headers={"X-User-Id": "ann"}).status_code for n in range(400)]

    admitted = statuses.count(200)
    print(f"rate limit: 3 workers, 400 requests of one user, {admitted} admitted (limit 200 a minute)")
    assert_that(set(statuses), equal_to({200, 429}))
    assert_that(admitted, less_than_or_equal_to(200))
    assert_that(admitted, greater_than_or_equal_to(180))  # slots leased and not used: at most a tenth


def test_concurrent_requests_on_several_workers_never_exceed_the_limit(app):
    """Three app instances (workers), four threads each, 600 requests of one user at once."""
    from backend import create_app

    workers = [create_app(dict(app.config, RATE_LIMIT="300 per minute")) for _ in range(3)]
    workers[0].test_client().get("/api/v1/days", headers={"X-User-Id": "bob"})  # the journals are made

    def call(n):
        return workers[n % 3].test_client().get("/api/v1/days", headers={"X-User-Id": "ann"}).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(call, range(600)))

    admitted = statuses.count(200)
    print(f"rate limit: 3 workers x 4 threads, 600 requests of one user, {admitted} admitted (limit 300 a minute)")
    assert_that(set(statuses), equal_to({200, 429}))
    assert_that(admitted, less_than_or_equal_to(300))
    assert_that(admitted, greater_than_or_equal_to(270))


def test_a_refused_user_is_refused_by_the_worker_without_asking_redis_again(client, redis_url):
    server = redis_lib.Redis.from_url(redis_url)
    spend(client, "ann", 6)
    server.config_resetstat()

    assert_that(set(spend(client, "ann", 20)), equal_to({429}))

    assert_that(lease_round_trips(server), equal_to(0))


def test_a_new_window_admits_the_user_again(app):
    from backend import create_app

    create_app(dict(app.config, RATE_LIMIT="off")).test_client().get(  # ann's journal is made, not counted
        "/api/v1/days", headers={"X-User-Id": "ann"})
    limited = create_app(dict(app.config, RATE_LIMIT="3 per 2 seconds")).test_client()
    statuses = spend(limited, "ann", 4)  # the window starts with the first of them
    refused = limited.get("/api/v1/days", headers={"X-User-Id": "ann"})
    time.sleep(2.05)  # the window is over

    assert_that(statuses, equal_to([200, 200, 200, 429]))
    assert_that(refused.headers["Retry-After"], is_in(["1", "2"]))
    assert_that(spend(limited, "ann", 3), equal_to([200] * 3))


def test_the_probes_are_never_limited(client):
    assert_that({client.get("/healthz").status_code for _ in range(10)}, equal_to({200}))


def test_the_limit_is_shared_through_redis_by_every_app_instance(app, client):
    from backend import create_app

    spend(client, "ann", 5)
    other_worker = create_app(dict(app.config))
    assert_that(other_worker.test_client().get("/api/v1/days", headers={"X-User-Id": "ann"}).status_code,
                equal_to(429))


def test_with_redis_down_limits_still_hold_per_worker_and_nothing_fails(client, redis_server):
    redis_server.stop()
    started = time.monotonic()
    statuses = spend(client, "ann", 8)
    assert_that(statuses[:5], equal_to([200] * 5))
    assert_that(set(statuses[5:]), equal_to({429}))
    assert_that(time.monotonic() - started, less_than(2))  # one timeout, then no request waits on Redis


def test_when_redis_returns_the_count_is_shared_again(app, client, redis_server):
    from backend import create_app, ratelimit

    redis_server.stop()
    assert_that(spend(client, "ann", 2), equal_to([200, 200]))  # counted in this worker's memory
    redis_server.start()
    time.sleep(ratelimit.OPEN_SECONDS + 0.1)
    spend(client, "ann", 5)  # counted in Redis again: this worker's 5 spend the window

    other_worker = create_app(dict(app.config)).test_client()
    assert_that(other_worker.get("/api/v1/days", headers={"X-User-Id": "ann"}).status_code, equal_to(429))


def test_with_rate_limit_off_nothing_is_refused_or_counted_in_redis(app, redis_url):
    from backend import create_app

    unlimited = create_app(dict(app.config, RATE_LIMIT="off")).test_client()

    assert_that(set(spend(unlimited, "ann", 8)), equal_to({200}))
    assert_that(redis_lib.Redis.from_url(redis_url).keys("*kyb-limit*"), empty())
