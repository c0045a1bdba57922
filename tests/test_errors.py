import pytest
from hamcrest import (assert_that, contains_string, equal_to, greater_than_or_equal_to, has_entries, has_item,
                      is_not, less_than)

from tests.api import SEED, add_task, create_day, import_seed
from tests.servers import free_port

PROBLEM = "application/problem+json"


def problem(response, status):
    assert_that(response.status_code, equal_to(status))
    assert_that(response.mimetype, equal_to(PROBLEM))
    body = response.get_json()
    assert_that(body, has_entries(status=status, title=is_not(None), detail=is_not(None), code=is_not(None)))
    assert_that(response.get_data(as_text=True), is_not(contains_string("Traceback")))
    return body


@pytest.mark.parametrize("payload, field", [
    ({"date": 20260302}, "date"),
    ({"date": "2026-02-30"}, "date"),
    ({"date": "02.03.2026"}, "date"),
    ({"date": "2026-03-02", "start": "25:00"}, "start"),
    ({"date": "2026-03-02", "start": 9}, "start"),
    ({"date": "2026-03-02", "colour": "red"}, "colour"),
    ({}, "date"),
])
def test_a_bad_day_is_refused_naming_the_field(client, payload, field):
    body = problem(client.post("/api/v1/days", json=payload), 400)
    assert_that([e["field"] for e in body["errors"]], has_item(field))


def test_malformed_json_is_a_400(client):
    response = client.post("/api/v1/days", data=b'{"date": ', content_type="application/json")
    problem(response, 400)


def test_json_that_is_not_an_object_is_a_400(client):
    problem(client.post("/api/v1/days", data=b'["2026-03-02"]', content_type="application/json"), 400)


def test_invalid_utf8_in_json_is_a_400(client):
    problem(client.post("/api/v1/days", data=b'{"date": "\xff"}', content_type="application/json"), 400)


def test_deeply_nested_json_is_a_400(client):
    problem(client.post("/api/v1/days", data=b"[" * 100_000 + b"]" * 100_000, content_type="application/json"), 400)


def test_a_body_that_is_not_json_is_a_415(client):
    problem(client.post("/api/v1/days", data="date=2026-03-02", content_type="application/x-www-form-urlencoded"),
            415)


def test_an_oversized_json_body_is_a_413(client):
    problem(client.post("/api/v1/notes", json={"text": "x" * 300_000}), 413)


def test_an_import_over_the_limit_is_a_413_and_changes_nothing(client, app):
    import_seed(client)
    big = b"- [ ] x\n" * (app.config["MAX_IMPORT_BYTES"] // 8 + 1)
    problem(client.post("/api/v1/import?mode=replace", data=big, content_type="text/markdown"), 413)
    assert_that(client.get("/api/v1/days").get_json()["items"][0]["date"], equal_to("2020-03-19"))


@pytest.mark.parametrize("path", ["/api/v1/tasks/nope", "/api/v1/tasks/0123456789abcdef01234567",
                                  "/api/v1/notes/zzz", "/api/v1/days/2026-03-09"])
def test_unknown_or_malformed_ids_are_a_404(client, path):
    problem(client.get(path), 404)


def test_an_impossible_date_in_the_path_is_a_400(client):
    body = problem(client.get("/api/v1/days/2026-13-45"), 400)
    assert_that(body["errors"][0]["field"], equal_to("date"))


def test_an_unknown_query_parameter_is_a_400(client):
    problem(client.get("/api/v1/days?form=2026-01-01"), 400)


def test_an_unknown_route_and_method_get_problem_details(client):
    problem(client.get("/api/v1/nothing-here"), 404)
    problem(client.put("/api/v1/days"), 405)


def test_a_bad_user_header_is_a_400(client):
    problem(client.get("/api/v1/days", headers={"X-User-Id": "../../etc"}), 400)


def test_a_stale_if_match_is_a_412_and_changes_nothing(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "contested")
    client.patch(f"/api/v1/tasks/{task['id']}", json={"text": "first writer"}, headers={"If-Match": '"1"'})
    late = client.patch(f"/api/v1/tasks/{task['id']}", json={"text": "second writer"}, headers={"If-Match": '"1"'})
    problem(late, 412)
    assert_that(client.get(f"/api/v1/tasks/{task['id']}").get_json()["text"], equal_to("first writer"))


def test_a_current_if_match_is_accepted(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "contested")
    etag = client.get(f"/api/v1/tasks/{task['id']}").headers["ETag"]
    response = client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True}, headers={"If-Match": etag})
    assert_that(response.status_code, equal_to(200))
    assert_that(response.headers["ETag"], equal_to('"2"'))


def test_the_day_etag_changes_when_a_task_in_it_changes(client):
    create_day(client, "2026-03-02")
    before = client.get("/api/v1/days/2026-03-02").headers["ETag"]
    add_task(client, "2026-03-02", "new")
    assert_that(client.get("/api/v1/days/2026-03-02").headers["ETag"], is_not(equal_to(before)))


def test_an_unreachable_database_is_a_quick_503(redis_url):
    import time

    from backend import create_app

    app = create_app({"MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/kyb", "MONGODB_TIMEOUT_MS": 300,
                      "AUTH_DEV_USER_HEADER": True,
                      "REDIS_URL": redis_url})
    client = app.test_client()
    started = time.monotonic()
    body = problem(client.get("/api/v1/days"), 503)
    elapsed = time.monotonic() - started
    assert_that(body["code"], equal_to("database_unavailable"))
    assert_that(elapsed, less_than(2.0))
    assert_that(client.get("/readyz").status_code, equal_to(503))
    assert_that(client.get("/healthz").status_code, equal_to(200))


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert_that(response.headers["X-Request-ID"], equal_to("abc-123"))
    assert_that(len(client.get("/healthz").headers["X-Request-ID"]), greater_than_or_equal_to(16))


def test_hostile_bodies_get_a_clear_4xx_quickly_and_change_nothing(client):
    import time

    import_seed(client)
    tabs = "".join("\t" * n + "- [ ] x\n" for n in range(2500))  # 2,500 nesting levels, 3 MB
    cases = [
        (client.post, "/api/v1/days", {"data": b"{" + b" " * (10 * 1024 * 1024) + b"}",
                                       "content_type": "application/json"}, 413),
        (client.post, "/api/v1/import?mode=replace", {"data": b"x" * (50 * 1024 * 1024),
                                                      "content_type": "text/markdown"}, 413),
        (client.post, "/api/v1/import?mode=replace", {"data": tabs.encode(), "content_type": "text/markdown"}, 400),
        (client.post, "/api/v1/days", {"data": b'{"date": "\xc3\x28"}', "content_type": "application/json"}, 400),
    ]
    for call, path, kwargs, status in cases:
        started = time.monotonic()
        response = call(path, **kwargs)
        assert_that((path, response.status_code), equal_to((path, status)))
        assert_that(time.monotonic() - started, less_than(5.0))
    assert_that(client.get("/api/v1/export").data, equal_to(SEED))
