from hamcrest import assert_that, contains_exactly, equal_to, has_entries

from tests.api import add_task, create_day, import_seed


def stats(client, query=""):
    response = client.get(f"/api/v1/stats{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_seed_stats_per_day_equal_the_hand_counted_figures(client):
    import_seed(client)
    days = stats(client)["days"]
    # worklog.md: 19.3 worked 8:30-16:30 (480 min), 27 tasks ticked; 20.3 and 23.3 have
    # only a start time (0 min), 5 and 2 ticked; the task carried into 23.3 is one.
    assert_that(days, contains_exactly(
        has_entries(date="2020-03-19", minutes=480, tasks_done=27, carried_in=0),
        has_entries(date="2020-03-20", minutes=0, tasks_done=5, carried_in=0),
        has_entries(date="2020-03-23", minutes=0, tasks_done=2, carried_in=1),
    ))


def test_seed_stats_per_iso_week_equal_the_hand_counted_figures(client):
    import_seed(client)
    # 19.3.2020 and 20.3.2020 are in ISO week 12, 23.3.2020 (a Monday) in week 13.
    assert_that(stats(client)["weeks"], contains_exactly(
        {"week": "2020-W12", "minutes": 480, "days": 2, "tasks_done": 32},
        {"week": "2020-W13", "minutes": 0, "days": 1, "tasks_done": 2},
    ))


def test_seed_stats_count_open_and_done_tasks_including_the_backlog(client):
    import_seed(client)
    # 47 checklist items, 34 ticked: 13 open, of which 8 are in the backlog.
    assert_that(stats(client)["tasks"], equal_to({"open": 13, "done": 34, "total": 47}))


def test_seed_stats_name_the_most_carried_task(client):
    import_seed(client)
    carried = stats(client)["carried"]
    assert_that(carried["total"], equal_to(1))
    assert_that(carried["most_carried"], contains_exactly(has_entries(
        text="Aggregate in Mongodb: https://medium.com/@paulrohan/aggregation-in-mongodb-8195c8624337",
        carry_count=1, date="2020-03-23", done=True)))


def test_stats_of_a_date_range_count_only_its_days(client):
    import_seed(client)
    ranged = stats(client, "?from=2020-03-20&to=2020-03-23")
    assert_that([d["date"] for d in ranged["days"]], contains_exactly("2020-03-20", "2020-03-23"))
    assert_that(ranged["tasks"], equal_to({"open": 3, "done": 7, "total": 10}))


def test_stats_follow_ticks_and_carry_overs(client):
    create_day(client, "2026-03-02", start="09:00", end="17:00")
    first = add_task(client, "2026-03-02", "one")
    add_task(client, "2026-03-02", "two")
    client.patch(f"/api/v1/tasks/{first['id']}", json={"done": True})
    client.post("/api/v1/days/2026-03-02/carry-over", json={"to": "2026-03-03"})
    result = stats(client)
    assert_that(result["days"], contains_exactly(
        has_entries(date="2026-03-02", minutes=480, tasks_done=1, carried_in=0),
        has_entries(date="2026-03-03", minutes=0, tasks_done=0, carried_in=1),
    ))
    assert_that(result["carried"]["most_carried"][0], has_entries(text="two", carry_count=1))
