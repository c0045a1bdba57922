from hamcrest import assert_that, contains_exactly, equal_to, has_entries, has_length, is_, none

from tests.api import add_task, create_day


def test_a_created_day_has_its_hours_and_minutes_worked(client):
    day = create_day(client, "2026-03-02", start="8:30", end="16:45")
    assert_that(day, has_entries(date="2026-03-02", start="08:30", end="16:45", minutes=495, week="2026-W10"))


def test_a_created_day_gets_a_heading_in_the_logs_style(client):
    day = create_day(client, "2026-03-02", start="9:00")
    assert_that(day["heading"], equal_to("## Dag 2.3.26 kl 9:00"))


def test_a_day_can_be_read_back_with_an_empty_task_tree(client):
    create_day(client, "2026-03-02")
    day = client.get("/api/v1/days/2026-03-02").get_json()
    assert_that(day, has_entries(date="2026-03-02", tasks=[], counts={"total": 0, "done": 0}))


def test_creating_the_same_day_twice_is_a_conflict(client):
    create_day(client, "2026-03-02")
    response = client.post("/api/v1/days", json={"date": "2026-03-02"})
    assert_that(response.status_code, equal_to(409))
    assert_that(response.get_json(), has_entries(code="day_exists"))


def test_days_are_listed_by_date_within_a_range(client):
    for date in ("2026-03-04", "2026-03-02", "2026-03-03", "2026-04-01"):
        create_day(client, date)
    listed = client.get("/api/v1/days?from=2026-03-01&to=2026-03-31").get_json()
    assert_that([d["date"] for d in listed["items"]], contains_exactly("2026-03-02", "2026-03-03", "2026-03-04"))


def test_days_are_paginated_with_a_cursor(client):
    for day in range(1, 6):
        create_day(client, f"2026-03-0{day}")
    first = client.get("/api/v1/days?limit=2").get_json()
    second = client.get(f"/api/v1/days?limit=2&after={first['next']}").get_json()
    third = client.get(f"/api/v1/days?limit=2&after={second['next']}").get_json()
    pages = [[d["date"] for d in page["items"]] for page in (first, second, third)]
    assert_that(pages, equal_to([["2026-03-01", "2026-03-02"], ["2026-03-03", "2026-03-04"], ["2026-03-05"]]))
    assert_that(third["next"], is_(none()))


def test_the_day_list_counts_tasks_and_done_tasks(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "one")
    add_task(client, "2026-03-02", "two")
    client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    listed = client.get("/api/v1/days").get_json()
    assert_that(listed["items"][0]["counts"], equal_to({"total": 2, "done": 1}))


def test_changing_hours_recomputes_minutes_and_the_heading(client):
    create_day(client, "2026-03-02", start="09:00")
    response = client.patch("/api/v1/days/2026-03-02", json={"end": "17:30"})
    assert_that(response.status_code, equal_to(200))
    assert_that(response.get_json(), has_entries(start="09:00", end="17:30", minutes=510,
                                                 heading="## Dag 2.3.26 9:00 - 17:30"))


def test_an_end_before_the_start_is_refused_naming_the_field(client):
    create_day(client, "2026-03-02", start="09:00")
    response = client.patch("/api/v1/days/2026-03-02", json={"end": "08:00"})
    assert_that(response.status_code, equal_to(400))
    assert_that(client.get("/api/v1/days/2026-03-02").get_json()["end"], is_(none()))


def test_deleting_a_day_deletes_its_tasks(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "gone with the day")
    assert_that(client.delete("/api/v1/days/2026-03-02").status_code, equal_to(204))
    assert_that(client.get("/api/v1/days/2026-03-02").status_code, equal_to(404))
    assert_that(client.get(f"/api/v1/tasks/{task['id']}").status_code, equal_to(404))


def test_a_new_day_is_placed_by_date_in_the_exported_journal(client):
    create_day(client, "2026-03-04")
    create_day(client, "2026-03-02")
    create_day(client, "2026-03-03")
    text = client.get("/api/v1/export").get_data(as_text=True)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert_that(headings, contains_exactly("## Dag 2.3.26", "## Dag 3.3.26", "## Dag 4.3.26"))


def test_each_user_sees_only_their_own_days(client):
    create_day(client, "2026-03-02")
    other = client.get("/api/v1/days", headers={"X-User-Id": "someone-else"}).get_json()
    assert_that(other["items"], has_length(0))
    assert_that(client.get("/api/v1/days/2026-03-02", headers={"X-User-Id": "someone-else"}).status_code,
                equal_to(404))
