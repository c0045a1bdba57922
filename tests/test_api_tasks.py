from hamcrest import (assert_that, contains_exactly, contains_string, equal_to, has_entries, has_length, is_,
                      none, not_none)

from tests.api import add_task, create_day, find, texts


def day(client, date="2026-03-02"):
    return client.get(f"/api/v1/days/{date}").get_json()


def export(client):
    return client.get("/api/v1/export").get_data(as_text=True)


def test_tasks_are_added_in_order_at_the_top_level(client):
    create_day(client, "2026-03-02")
    for text in ("first", "second", "third"):
        add_task(client, "2026-03-02", text)
    assert_that(texts(day(client)["tasks"]), contains_exactly("first", "second", "third"))


def test_a_task_can_be_added_under_a_parent_to_any_depth(client):
    create_day(client, "2026-03-02")
    parent = add_task(client, "2026-03-02", "parent")
    child = add_task(client, "2026-03-02", "child", parent_id=parent["id"])
    add_task(client, "2026-03-02", "grandchild", parent_id=child["id"])
    add_task(client, "2026-03-02", "after")
    assert_that(texts(day(client)["tasks"]), contains_exactly("parent", "  child", "    grandchild", "after"))


def test_nested_tasks_are_exported_indented_under_their_parent(client):
    create_day(client, "2026-03-02")
    parent = add_task(client, "2026-03-02", "parent")
    add_task(client, "2026-03-02", "child", parent_id=parent["id"])
    assert_that(export(client), contains_string("- [ ] parent\n    - [ ] child\n"))


def test_a_task_can_be_inserted_at_an_index_among_its_siblings(client):
    create_day(client, "2026-03-02")
    add_task(client, "2026-03-02", "a")
    add_task(client, "2026-03-02", "c")
    add_task(client, "2026-03-02", "b", index=1)
    add_task(client, "2026-03-02", "start", index=0)
    assert_that(texts(day(client)["tasks"]), contains_exactly("start", "a", "b", "c"))


def test_ticking_a_task_marks_it_done_with_a_time(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "tick me")
    response = client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    assert_that(response.get_json(), has_entries(done=True, done_at=not_none(), version=2))
    assert_that(export(client), contains_string("- [x] tick me"))


def test_unticking_a_task_clears_its_done_time(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "tick me")
    client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    response = client.patch(f"/api/v1/tasks/{task['id']}", json={"done": False})
    assert_that(response.get_json(), has_entries(done=False, done_at=none()))


def test_editing_a_task_changes_its_text(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "draft")
    client.patch(f"/api/v1/tasks/{task['id']}", json={"text": "Read `kubectl explain` [docs](https://k8s.io)"})
    assert_that(export(client), contains_string("- [ ] Read `kubectl explain` [docs](https://k8s.io)"))


def test_task_text_that_would_not_stay_one_task_is_refused(client):
    create_day(client, "2026-03-02")
    for text in ("two\n\nparagraphs", "   ", "line\n- [ ] smuggled task", "x\n## Dag 1.1.26"):
        response = client.post("/api/v1/days/2026-03-02/tasks", json={"text": text})
        assert_that((text, response.status_code), equal_to((text, 400)))
    assert_that(day(client)["tasks"], has_length(0))


def test_deleting_a_task_deletes_its_subtree_only(client):
    create_day(client, "2026-03-02")
    parent = add_task(client, "2026-03-02", "parent")
    child = add_task(client, "2026-03-02", "child", parent_id=parent["id"])
    add_task(client, "2026-03-02", "grandchild", parent_id=child["id"])
    add_task(client, "2026-03-02", "sibling")
    assert_that(client.delete(f"/api/v1/tasks/{child['id']}").status_code, equal_to(204))
    assert_that(texts(day(client)["tasks"]), contains_exactly("parent", "sibling"))


def test_a_task_moves_with_its_subtree_to_another_position(client):
    create_day(client, "2026-03-02")
    a = add_task(client, "2026-03-02", "a")
    add_task(client, "2026-03-02", "a1", parent_id=a["id"])
    add_task(client, "2026-03-02", "b")
    add_task(client, "2026-03-02", "c")
    client.post(f"/api/v1/tasks/{a['id']}/move", json={"date": "2026-03-02", "index": 2})
    assert_that(texts(day(client)["tasks"]), contains_exactly("b", "c", "a", "  a1"))


def test_a_task_can_be_nested_under_a_sibling_and_unnested_again(client):
    create_day(client, "2026-03-02")
    a = add_task(client, "2026-03-02", "a")
    b = add_task(client, "2026-03-02", "b")
    add_task(client, "2026-03-02", "b1", parent_id=b["id"])
    client.post(f"/api/v1/tasks/{b['id']}/move", json={"date": "2026-03-02", "parent_id": a["id"]})
    assert_that(texts(day(client)["tasks"]), contains_exactly("a", "  b", "    b1"))
    assert_that(export(client), contains_string("- [ ] a\n    - [ ] b\n        - [ ] b1\n"))
    client.post(f"/api/v1/tasks/{b['id']}/move", json={"date": "2026-03-02", "parent_id": None})
    assert_that(texts(day(client)["tasks"]), contains_exactly("a", "b", "  b1"))


def test_a_task_cannot_be_moved_under_itself(client):
    create_day(client, "2026-03-02")
    a = add_task(client, "2026-03-02", "a")
    a1 = add_task(client, "2026-03-02", "a1", parent_id=a["id"])
    response = client.post(f"/api/v1/tasks/{a['id']}/move", json={"date": "2026-03-02", "parent_id": a1["id"]})
    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_json()["errors"][0]["field"], equal_to("parent_id"))
    assert_that(texts(day(client)["tasks"]), contains_exactly("a", "  a1"))


def test_a_task_moves_to_another_day(client):
    create_day(client, "2026-03-02")
    create_day(client, "2026-03-03")
    task = add_task(client, "2026-03-02", "later")
    moved = client.post(f"/api/v1/tasks/{task['id']}/move", json={"date": "2026-03-03"}).get_json()
    assert_that(moved["date"], equal_to("2026-03-03"))
    assert_that(day(client)["tasks"], has_length(0))
    assert_that(texts(day(client, "2026-03-03")["tasks"]), contains_exactly("later"))


def test_many_inserts_at_the_same_place_keep_their_order(client):
    create_day(client, "2026-03-02")
    create_day(client, "2026-03-03")
    for n in range(40):
        add_task(client, "2026-03-02", f"t{n}", index=0)
    assert_that(texts(day(client)["tasks"]), equal_to([f"t{n}" for n in reversed(range(40))]))


def test_carry_over_copies_unfinished_tasks_with_a_link_to_the_original(client):
    create_day(client, "2026-03-02")
    done = add_task(client, "2026-03-02", "finished")
    parent = add_task(client, "2026-03-02", "open parent")
    add_task(client, "2026-03-02", "open child", parent_id=parent["id"])
    client.patch(f"/api/v1/tasks/{done['id']}", json={"done": True})
    response = client.post("/api/v1/days/2026-03-02/carry-over", json={"to": "2026-03-03"})
    assert_that(response.status_code, equal_to(200))
    carried = day(client, "2026-03-03")["tasks"]
    assert_that(texts(carried), contains_exactly("open parent", "  open child"))
    assert_that(carried[0], has_entries(carried_from=parent["id"], carry_count=1, done=False))
    assert_that(client.get(f"/api/v1/tasks/{parent['id']}").get_json()["carried_to"], equal_to(carried[0]["id"]))


def test_carrying_over_twice_does_not_copy_again(client):
    create_day(client, "2026-03-02")
    add_task(client, "2026-03-02", "open")
    client.post("/api/v1/days/2026-03-02/carry-over", json={"to": "2026-03-03"})
    second = client.post("/api/v1/days/2026-03-02/carry-over", json={"to": "2026-03-03"})
    assert_that(second.get_json()["carried"], has_length(0))
    assert_that(day(client, "2026-03-03")["tasks"], has_length(1))


def test_a_task_carried_again_counts_its_carries(client):
    create_day(client, "2026-03-02")
    add_task(client, "2026-03-02", "stubborn")
    client.post("/api/v1/days/2026-03-02/carry-over", json={"to": "2026-03-03"})
    client.post("/api/v1/days/2026-03-03/carry-over", json={"to": "2026-03-04"})
    assert_that(day(client, "2026-03-04")["tasks"][0]["carry_count"], equal_to(2))


def test_backlog_items_are_listed_and_exported_under_a_backlog_heading(client):
    create_day(client, "2026-03-02")
    response = client.post("/api/v1/backlog", json={"text": "Setup keycloak"})
    assert_that(response.status_code, equal_to(201))
    items = client.get("/api/v1/backlog").get_json()["items"]
    assert_that(texts(items), contains_exactly("Setup keycloak"))
    assert_that(export(client), contains_string("### Backlog\n- [ ] Setup keycloak"))


def test_a_backlog_item_can_be_moved_onto_a_day(client):
    create_day(client, "2026-03-02")
    item = client.post("/api/v1/backlog", json={"text": "Setup keycloak"}).get_json()
    client.post(f"/api/v1/tasks/{item['id']}/move", json={"date": "2026-03-02"})
    assert_that(client.get("/api/v1/backlog").get_json()["items"], has_length(0))
    assert_that(find(day(client)["tasks"], "Setup keycloak")["date"], equal_to("2026-03-02"))


def test_a_day_task_can_be_moved_to_the_backlog(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "someday")
    moved = client.post(f"/api/v1/tasks/{task['id']}/move", json={"date": None}).get_json()
    assert_that(moved["date"], is_(none()))
    assert_that(texts(client.get("/api/v1/backlog").get_json()["items"]), contains_exactly("someday"))


def test_tasks_of_another_user_are_not_found(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "mine")
    other = {"X-User-Id": "mallory"}
    assert_that(client.get(f"/api/v1/tasks/{task['id']}", headers=other).status_code, equal_to(404))
    assert_that(client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True}, headers=other).status_code,
                equal_to(404))
    assert_that(client.delete(f"/api/v1/tasks/{task['id']}", headers=other).status_code, equal_to(404))
    assert_that(client.get(f"/api/v1/tasks/{task['id']}").get_json()["done"], is_(False))


def test_moving_a_task_to_a_day_not_yet_written_makes_the_day(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "tomorrow")
    moved = client.post(f"/api/v1/tasks/{task['id']}/move", json={"date": "2026-03-05"})
    assert_that(moved.status_code, equal_to(200))
    assert_that(texts(day(client, "2026-03-05")["tasks"]), contains_exactly("tomorrow"))


def test_a_move_with_a_stale_if_match_is_refused(client):
    create_day(client, "2026-03-02")
    task = add_task(client, "2026-03-02", "a")
    client.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    stale = client.post(f"/api/v1/tasks/{task['id']}/move", json={"date": None}, headers={"If-Match": '"1"'})
    assert_that(stale.status_code, equal_to(412))
    assert_that(client.get("/api/v1/backlog").get_json()["items"], has_length(0))
