"""Per-user rate limits: 429 with Retry-After past the rate, shared in Redis, kept when Redis is down."""
import pytest
import redis as redis_lib
from hamcrest import assert_that, empty, equal_to, greater_than, has_key, is_not

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


def test_a_request_within_the_rate_costs_only_its_count_in_redis(client, redis_url):
    server = redis_lib.Redis.from_url(redis_url)
    spend(client, "ann", 1)  # the limit's counting script is loaded into Redis
    server.config_resetstat()

    answers = [client.get("/api/v1/days", headers={"X-User-Id": "ann"}) for _ in range(3)]

    # Reading the window back would be a GET and a TTL of the count, two more round trips a
    # request; nothing else here asks Redis for a TTL (the cache's GETs run in its script).
    assert_that(server.info("commandstats"), is_not(has_key("cmdstat_ttl")))
    assert_that([a.headers.get("X-RateLimit-Remaining") for a in answers], equal_to([None] * 3))


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
    statuses = spend(client, "ann", 8)
    assert_that(statuses[:5], equal_to([200] * 5))
    assert_that(set(statuses[5:]), equal_to({429}))


def test_with_rate_limit_off_nothing_is_refused_or_counted_in_redis(app, redis_url):
    from backend import create_app

    unlimited = create_app(dict(app.config, RATE_LIMIT="off")).test_client()

    assert_that(set(spend(unlimited, "ann", 8)), equal_to({200}))
    assert_that(redis_lib.Redis.from_url(redis_url).keys("*kyb-limit*"), empty())
