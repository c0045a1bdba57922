from hamcrest import assert_that, contains_exactly, contains_string, equal_to, has_entries, has_length

from tests.api import create_day


def test_a_note_is_added_at_the_end_of_the_journal(client):
    response = client.post("/api/v1/notes", json={"text": "## mongodb queries\n`db.collection.find({query})`"})
    assert_that(response.status_code, equal_to(201))
    assert_that(client.get("/api/v1/export").get_data(as_text=True),
                equal_to("## mongodb queries\n`db.collection.find({query})`\n"))


def test_a_note_can_belong_to_a_day(client):
    create_day(client, "2026-03-02")
    client.post("/api/v1/notes", json={"text": "Standup moved to 10:00.", "date": "2026-03-02"})
    notes = client.get("/api/v1/notes?date=2026-03-02").get_json()["items"]
    assert_that([n["text"] for n in notes], contains_exactly("Standup moved to 10:00."))


def test_a_note_can_be_edited_and_deleted(client):
    note = client.post("/api/v1/notes", json={"text": "draft"}).get_json()
    edited = client.patch(f"/api/v1/notes/{note['id']}", json={"text": "final"}).get_json()
    assert_that(edited, has_entries(text="final", version=2))
    assert_that(client.delete(f"/api/v1/notes/{note['id']}").status_code, equal_to(204))
    assert_that(client.get("/api/v1/notes").get_json()["items"], has_length(0))


def test_a_note_may_not_smuggle_in_tasks_or_days(client):
    for text in ("- [ ] a task", "## Dag 2.3.26 9:00 - 17:00"):
        response = client.post("/api/v1/notes", json={"text": text})
        assert_that(response.status_code, equal_to(400))
        assert_that(response.get_json()["errors"][0]["field"], equal_to("text"))


def test_notes_keep_markdown_verbatim_in_the_export(client):
    text = "#### Minikube\n`minikube start` : Start cluster  \n![img](images/a.png)"
    client.post("/api/v1/notes", json={"text": text})
    assert_that(client.get("/api/v1/export").get_data(as_text=True), contains_string(text + "\n"))
