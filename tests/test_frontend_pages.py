"""The frontend's pages and forms, through Flask's test client, against a real backend
server (gunicorn, FerretDB, Redis) on an empty journal per test."""
import datetime as dt
import io
import re

import pytest
from hamcrest import (assert_that, contains_string, ends_with, equal_to, has_entries, has_length,
                      is_not, starts_with)

from tests.api import SEED, texts
from tests.stack import frontend_settings

DAY = "2026-11-24"
TODAY = dt.date.today().isoformat()


def csrf(client):
    """The session's CSRF token (made here if the client has none yet)."""
    with client.session_transaction() as session:
        return session.setdefault("csrf_token", "token-of-this-test-session")


def post(client, path, data=None, **kwargs):
    """Submit a form as a browser does: with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf(client)}, **kwargs)


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def tree_of(journal, date=DAY):
    return texts(journal.day(date)["tasks"])


# -- days ----------------------------------------------------------------------------

def test_today_without_a_day_offers_to_start_it(frontend):
    html = page(frontend, "/")

    assert_that(html, contains_string("Nothing written for this day yet"))
    assert_that(html, contains_string("Start the day"))


def test_starting_today_with_hours_comes_back_to_today_showing_them(frontend):
    response = post(frontend, "/days", {"date": TODAY, "start": "08:30", "end": "16:45", "next": "/"})

    assert_that(response.status_code, equal_to(303))
    assert_that(response.headers["Location"], equal_to("/"))
    html = page(frontend, "/")
    assert_that(html, contains_string("8:15 h"))
    assert_that(html, contains_string('value="08:30"'))


def test_changing_hours_updates_the_day_and_its_heading(frontend, journal):
    journal.create_day(DAY, start="09:00")

    post(frontend, f"/days/{DAY}/hours", {"start": "09:00", "end": "17:30"})

    assert_that(journal.day(DAY), has_entries(minutes=510, end="17:30", heading=ends_with("9:00 - 17:30")))


def test_hours_with_the_end_before_the_start_are_refused_next_to_the_end_field(frontend, journal):
    journal.create_day(DAY)

    response = post(frontend, f"/days/{DAY}/hours", {"form": "hours", "next": f"/days/{DAY}",
                                                     "start": "17:00", "end": "09:00"})

    html = response.get_data(as_text=True)
    assert_that(response.status_code, equal_to(400))
    assert_that(html, contains_string('<p class="field-error" id="hours-end-error">must be after start</p>'))
    assert_that(html, contains_string('aria-invalid="true" aria-describedby="hours-end-error"'))
    assert_that(html, contains_string('value="17:00"'))  # what the user typed is kept


def test_creating_a_day_that_exists_says_so_on_the_form(frontend, journal):
    journal.create_day(DAY)

    response = post(frontend, "/days", {"form": "new-day", "next": "/days", "date": DAY})

    assert_that(response.status_code, equal_to(409))
    assert_that(response.get_data(as_text=True), contains_string(f"The day {DAY} exists already."))


def test_a_day_created_on_the_days_page_opens_it(frontend):
    response = post(frontend, "/days", {"date": DAY, "next": "/days"})

    assert_that(response.headers["Location"], equal_to(f"/days/{DAY}"))
    assert_that(page(frontend, f"/days/{DAY}"), contains_string("Started Tuesday 24 November 2026."))


def test_the_days_page_lists_every_day_with_its_counts(frontend, journal):
    journal.create_day("2026-11-23", start="08:00", end="16:00")
    journal.create_day(DAY)
    journal.add_task(DAY, "one")

    html = page(frontend, "/days")

    assert_that(html, contains_string('href="/days/2026-11-23">Monday 23 November 2026</a>'))
    assert_that(html, contains_string("8:00"))
    assert_that(html, contains_string("0 of 1"))


def test_go_to_day_opens_the_chosen_day(frontend):
    response = frontend.get("/days/go?date=2026-02-03")

    assert_that(response.headers["Location"], equal_to("/days/2026-02-03"))


def test_the_week_page_shows_each_day_with_hours_and_done_counts_and_the_total(frontend, journal):
    journal.create_day("2026-11-23", start="08:00", end="12:00")
    journal.create_day(DAY, start="09:00", end="11:30")
    task = journal.add_task(DAY, "done one")
    frontend_tick(frontend, task["id"], True)

    html = page(frontend, "/weeks/2026-W48")

    assert_that(html, contains_string("Week 48, 2026"))
    assert_that(html, contains_string("Sunday 29 November 2026"))
    assert_that(html, contains_string("not written"))
    assert_that(html, contains_string('<td class="num">6:30</td><td class="num">1 of 1</td>'))


def test_week_redirects_to_the_current_week(frontend):
    year, week, _ = dt.date.today().isocalendar()

    assert_that(frontend.get("/week").headers["Location"], equal_to(f"/weeks/{year}-W{week:02d}"))


def test_deleting_a_day_asks_first_then_removes_it_with_its_tasks(frontend, journal):
    journal.create_day(DAY)
    journal.add_task(DAY, "goes too")

    assert_that(page(frontend, f"/days/{DAY}/delete"), contains_string("1 task and its notes"))
    response = post(frontend, f"/days/{DAY}/delete", {"next": "/days"})

    assert_that(response.headers["Location"], equal_to("/days"))
    assert_that(page(frontend, f"/days/{DAY}"), contains_string("Nothing written for this day yet"))


@pytest.mark.parametrize("path", ["/days/2026-02-30", "/days/tomorrow", "/weeks/2026-W60", "/no-such-page"])
def test_a_path_that_names_nothing_is_a_404_page(frontend, path):
    response = frontend.get(path)

    assert_that(response.status_code, equal_to(404))
    assert_that(response.get_data(as_text=True), contains_string("Not found"))


# -- tasks ---------------------------------------------------------------------------

def frontend_tick(client, task_id, done):
    return post(client, f"/tasks/{task_id}/tick", {"done": "true" if done else "false"})


def test_a_task_added_to_a_day_appears_in_its_tree(frontend, journal):
    journal.create_day(DAY)

    response = post(frontend, f"/days/{DAY}/tasks", {"text": "  Write the README  ", "next": f"/days/{DAY}"})

    assert_that(response.status_code, equal_to(303))
    assert_that(tree_of(journal), equal_to(["Write the README"]))
    assert_that(page(frontend, f"/days/{DAY}"), contains_string('<span class="text">Write the README</span>'))


def test_a_task_added_under_another_is_nested(frontend, journal):
    journal.create_day(DAY)
    parent = journal.add_task(DAY, "Set up the cluster")

    post(frontend, f"/days/{DAY}/tasks", {"text": "Install kubectl", "parent_id": parent["id"]})

    assert_that(tree_of(journal), equal_to(["Set up the cluster", "  Install kubectl"]))


def test_a_blank_task_is_refused_next_to_the_text_field(frontend, journal):
    journal.create_day(DAY)

    response = post(frontend, f"/days/{DAY}/tasks", {"form": "add-task", "next": f"/days/{DAY}", "text": "   "})

    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_data(as_text=True),
                contains_string('<p class="field-error" id="add-task-text-error">Write what the task is.</p>'))


def test_a_task_the_backend_refuses_shows_its_message_next_to_the_text_field(frontend, journal):
    journal.create_day(DAY)

    response = post(frontend, f"/days/{DAY}/tasks", {"form": "add-task", "next": f"/days/{DAY}",
                                                      "text": "one task\n\n- [ ] and another"})

    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_data(as_text=True), contains_string('id="add-task-text-error">must be one task'))


def test_ticking_marks_a_task_done_and_ticking_again_reopens_it(frontend, journal):
    journal.create_day(DAY)
    task = journal.add_task(DAY, "tick me")

    frontend_tick(frontend, task["id"], True)
    assert_that(journal.day(DAY)["tasks"][0]["done"], equal_to(True))
    assert_that(page(frontend, f"/days/{DAY}"), contains_string('aria-pressed="true"'))

    frontend_tick(frontend, task["id"], False)
    assert_that(journal.day(DAY)["tasks"][0]["done"], equal_to(False))


def test_ticking_returns_to_the_page_it_was_on(frontend, journal):
    journal.create_day(TODAY)
    task = journal.add_task(TODAY, "tick me")

    response = post(frontend, f"/tasks/{task['id']}/tick", {"done": "true", "next": "/"})

    assert_that(response.headers["Location"], equal_to("/"))


def move_button(html, move, task_id):
    """The value of a task's move button (`parent id/index`), as the page offers it."""
    return re.search(rf'name="to" value="([^"]*)"\s+id="{move}-{task_id}"', html)[1]


def press_move(client, journal, move, task):
    html = page(client, f"/days/{DAY}")
    return post(client, f"/tasks/{task['id']}/move", {"date": DAY, "to": move_button(html, move, task["id"])})


def test_move_buttons_reorder_nest_and_unnest_tasks(frontend, journal):
    journal.create_day(DAY)
    a, b, c = (journal.add_task(DAY, text) for text in ("a", "b", "c"))

    press_move(frontend, journal, "up", c)
    assert_that(tree_of(journal), equal_to(["a", "c", "b"]))
    press_move(frontend, journal, "down", a)
    assert_that(tree_of(journal), equal_to(["c", "a", "b"]))
    press_move(frontend, journal, "indent", a)
    press_move(frontend, journal, "indent", b)
    assert_that(tree_of(journal), equal_to(["c", "  a", "  b"]))
    press_move(frontend, journal, "indent", b)
    assert_that(tree_of(journal), equal_to(["c", "  a", "    b"]))
    press_move(frontend, journal, "outdent", b)
    assert_that(tree_of(journal), equal_to(["c", "  a", "  b"]))
    press_move(frontend, journal, "outdent", a)
    assert_that(tree_of(journal), equal_to(["c", "  b", "a"]))


def test_the_first_task_offers_no_up_or_nest_button(frontend, journal):
    journal.create_day(DAY)
    first = journal.add_task(DAY, "first")
    journal.add_task(DAY, "second")

    html = page(frontend, f"/days/{DAY}")

    assert_that(html, is_not(contains_string(f'id="up-{first["id"]}"')))
    assert_that(html, is_not(contains_string(f'id="indent-{first["id"]}"')))
    assert_that(html, contains_string(f'id="down-{first["id"]}"'))


def test_carry_over_copies_the_unfinished_tasks_to_the_chosen_day(frontend, journal):
    journal.create_day(DAY)
    parent = journal.add_task(DAY, "open parent")
    journal.add_task(DAY, "open child", parent_id=parent["id"])
    done = journal.add_task(DAY, "finished")
    frontend_tick(frontend, done["id"], True)

    response = post(frontend, f"/days/{DAY}/carry-over", {"to": "2026-11-25", "next": f"/days/{DAY}"})

    assert_that(response.headers["Location"], equal_to(f"/days/{DAY}"))
    assert_that(tree_of(journal, "2026-11-25"), equal_to(["open parent", "  open child"]))
    assert_that(page(frontend, f"/days/{DAY}"), contains_string("Carried 2 unfinished tasks to Wednesday 25 November 2026."))
    assert_that(page(frontend, "/days/2026-11-25"), contains_string("carried ×1"))


def test_a_task_is_edited_on_its_own_page(frontend, journal):
    journal.create_day(DAY)
    task = journal.add_task(DAY, "old text")

    html = page(frontend, f"/tasks/{task['id']}")
    version = re.search(r'name="version" value="(\d+)"', html)[1]
    response = post(frontend, f"/tasks/{task['id']}", {"text": "new text", "version": version})

    assert_that(response.headers["Location"], equal_to(f"/days/{DAY}"))
    assert_that(tree_of(journal), equal_to(["new text"]))


def test_an_edit_of_a_task_changed_meanwhile_is_refused_and_shows_the_current_text(frontend, journal):
    journal.create_day(DAY)
    task = journal.add_task(DAY, "first text")
    journal.call("PATCH", f"/tasks/{task['id']}", json={"text": "changed elsewhere"})

    response = post(frontend, f"/tasks/{task['id']}", {"form": "edit-task", "next": f"/tasks/{task['id']}",
                                                       "text": "my edit", "version": str(task["version"])})

    html = response.get_data(as_text=True)
    assert_that(response.status_code, equal_to(412))
    assert_that(html, contains_string('class="form-problem" role="alert"'))
    assert_that(html, contains_string("changed elsewhere"))
    assert_that(tree_of(journal), equal_to(["changed elsewhere"]))


def test_a_task_moved_to_a_day_not_yet_written_makes_the_day(frontend, journal):
    journal.create_day(DAY)
    task = journal.add_task(DAY, "later")

    response = post(frontend, f"/tasks/{task['id']}/move", {"date": "2026-12-01"})

    assert_that(response.headers["Location"], equal_to("/days/2026-12-01"))
    assert_that(tree_of(journal, "2026-12-01"), equal_to(["later"]))


def test_a_task_moves_to_the_backlog_from_its_page_when_no_day_is_given(frontend, journal):
    journal.create_day(DAY)
    task = journal.add_task(DAY, "some day")

    response = post(frontend, f"/tasks/{task['id']}/move", {"date": ""})

    assert_that(response.headers["Location"], equal_to("/backlog"))
    assert_that(texts(journal.call("GET", "/backlog")["items"]), equal_to(["some day"]))


def test_deleting_a_task_deletes_its_sub_tasks(frontend, journal):
    journal.create_day(DAY)
    parent = journal.add_task(DAY, "parent")
    journal.add_task(DAY, "child", parent_id=parent["id"])
    journal.add_task(DAY, "stays")

    post(frontend, f"/tasks/{parent['id']}/delete", {"next": f"/days/{DAY}"})

    assert_that(tree_of(journal), equal_to(["stays"]))


def test_an_unknown_task_is_a_404_page(frontend):
    response = frontend.get("/tasks/0123456789abcdef01234567")

    assert_that(response.status_code, equal_to(404))
    assert_that(response.get_data(as_text=True), contains_string("No such task."))


def test_task_text_is_shown_as_safe_markdown(frontend, journal):
    journal.create_day(DAY)
    journal.add_task(DAY, "<script>alert(1)</script> `kubectl get pods` see https://kubernetes.io **now**")

    html = page(frontend, f"/days/{DAY}")

    assert_that(html, is_not(contains_string("<script>alert")))
    assert_that(html, contains_string("&lt;script&gt;alert(1)&lt;/script&gt; <code>kubectl get pods</code> see "
                                      '<a href="https://kubernetes.io" rel="nofollow noopener noreferrer">'
                                      "https://kubernetes.io</a> <strong>now</strong>"))


# -- backlog and notes ---------------------------------------------------------------

def test_the_backlog_takes_items_and_moves_one_onto_a_day(frontend, journal):
    post(frontend, "/backlog", {"text": "Set up Keycloak"})
    post(frontend, "/backlog", {"text": "Set up Redis"})
    item = journal.call("GET", "/backlog")["items"][0]
    assert_that(page(frontend, "/backlog"), contains_string("Set up Keycloak"))

    response = post(frontend, "/backlog/schedule", {"task_id": item["id"], "date": DAY, "next": "/backlog"})

    assert_that(response.headers["Location"], equal_to("/backlog"))
    assert_that(tree_of(journal), equal_to(["Set up Keycloak"]))
    assert_that(texts(journal.call("GET", "/backlog")["items"]), equal_to(["Set up Redis"]))


def test_notes_are_added_edited_and_deleted(frontend, journal):
    post(frontend, "/notes", {"text": "## Minikube\r\n`minikube start`\r\n"})
    note = journal.call("GET", "/notes")["items"][0]
    assert_that(note["text"], equal_to("## Minikube\n`minikube start`\n"))
    assert_that(page(frontend, "/notes"), contains_string("<code>minikube start</code>"))

    post(frontend, f"/notes/{note['id']}", {"text": "## Minikube\n`minikube stop`", "version": str(note["version"])})
    assert_that(journal.call("GET", "/notes")["items"][0]["text"], equal_to("## Minikube\n`minikube stop`"))

    post(frontend, f"/notes/{note['id']}/delete", {"next": "/notes"})
    assert_that(journal.call("GET", "/notes")["items"], equal_to([]))


def test_a_note_for_a_day_is_shown_on_the_day(frontend, journal):
    journal.create_day(DAY)

    response = post(frontend, "/notes", {"text": "talked to *Ana*", "date": DAY})

    assert_that(response.headers["Location"], equal_to(f"/days/{DAY}"))
    assert_that(page(frontend, f"/days/{DAY}"), contains_string("talked to <em>Ana</em>"))


def test_a_note_with_a_checklist_item_is_refused_next_to_the_text(frontend):
    response = post(frontend, "/notes", {"form": "add-note", "next": "/notes", "text": "- [ ] not a note"})

    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_data(as_text=True), contains_string('id="add-note-text-error">must not contain checklist'))


# -- import, export, stats -----------------------------------------------------------

def import_file(client, data, mode="replace", filename="worklog.md"):
    return post(client, "/import", {"mode": mode, "file": (io.BytesIO(data), filename)},
                content_type="multipart/form-data")


def test_importing_a_log_shows_what_was_created(frontend):
    response = import_file(frontend, SEED)

    assert_that(response.headers["Location"], equal_to("/import"))
    html = page(frontend, "/import")
    assert_that(html, contains_string("Imported worklog.md (replace)"))
    assert_that(html, contains_string('<th scope="row">Days</th><td class="num">3</td>'))
    assert_that(html, contains_string('<th scope="row">Backlog items</th><td class="num">8</td>'))


def test_the_export_of_an_imported_log_is_the_same_bytes(frontend):
    import_file(frontend, SEED)

    response = frontend.get("/export/worklog.md")

    assert_that(response.data, equal_to(SEED))
    assert_that(response.headers["Content-Type"], equal_to("text/markdown; charset=utf-8"))
    assert_that(response.headers["Content-Disposition"], equal_to('attachment; filename="kyb-worklog.md"'))


def test_an_export_of_a_date_range_holds_only_those_days(frontend):
    import_file(frontend, SEED)

    response = frontend.get("/export/worklog.md?from=2020-03-23&to=2020-03-20")  # given the wrong way round

    text = response.get_data(as_text=True)
    assert_that(text, starts_with("## Dag 20.3.20 kl 9:30"))
    assert_that(text, is_not(contains_string("19.3.20")))
    assert_that(response.headers["Content-Disposition"], contains_string("kyb-worklog-2020-03-20-to-2020-03-23.md"))


def test_merging_a_log_adds_to_the_journal(frontend, journal):
    journal.create_day(DAY)

    import_file(frontend, SEED, mode="merge")

    assert_that(journal.call("GET", "/days")["items"], has_length(4))


def test_an_import_without_a_file_is_refused_next_to_the_file_field(frontend):
    response = post(frontend, "/import", {"form": "import", "next": "/import", "mode": "merge"},
                    content_type="multipart/form-data")

    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_data(as_text=True), contains_string('id="import-file-error">Choose a file.'))


def test_an_import_the_backend_cannot_read_shows_why(frontend):
    response = post(frontend, "/import", {"form": "import", "next": "/import", "mode": "merge",
                                          "file": (io.BytesIO(b"## Dag 1.1.20\n- [ ] caf\xe9\n"), "latin1.md")},
                    content_type="multipart/form-data")

    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_data(as_text=True), contains_string("The file is not UTF-8"))


def test_stats_show_charts_and_the_same_numbers_as_tables(frontend):
    import_file(frontend, SEED)

    html = page(frontend, "/stats")

    assert_that(re.findall(r'<svg viewBox="[^"]+" role="img" aria-labelledby="([\w-]+)-title"', html),
                equal_to(["hours-day", "hours-week", "done-day", "done-week", "carried-day"]))
    assert_that(html, contains_string("<title>2020-03-19: 8:00 h</title>"))
    assert_that(html, contains_string('<a href="/days/2020-03-19">2020-03-19</a></th><td class="num">8:00</td>'))
    assert_that(html, contains_string('<a href="/weeks/2020-W12">2020-W12</a></th><td class="num">2</td>'))


def test_stats_of_a_range_show_only_its_days(frontend):
    import_file(frontend, SEED)

    html = page(frontend, "/stats?from=2020-03-20&to=2020-03-23")

    assert_that(html, is_not(contains_string("/days/2020-03-19")))
    assert_that(html, contains_string("/days/2020-03-23"))


# -- htmx, forms and security ----------------------------------------------------------

def test_an_htmx_tick_is_answered_with_the_page_that_holds_the_changed_tree(frontend, journal):
    journal.create_day(DAY)
    task = journal.add_task(DAY, "in place")

    response = post(frontend, f"/tasks/{task['id']}/tick", {"done": "true", "next": f"/days/{DAY}"},
                    headers={"HX-Request": "true"}, follow_redirects=True)

    html = response.get_data(as_text=True)
    assert_that(response.status_code, equal_to(200))
    assert_that(html, contains_string('<section id="tasks"'))
    assert_that(html, contains_string(f'id="tick-{task["id"]}" aria-pressed="true"'))


def test_every_post_form_carries_the_csrf_token_and_its_way_back(frontend, journal):
    journal.import_markdown(SEED)
    journal.create_day(TODAY)
    for path in ["/", "/days/2020-03-19", "/days", "/backlog", "/notes", "/import"]:
        html = page(frontend, path)
        forms = re.findall(r'<form method="post".*?</form>', html, re.S)

        assert forms, path
        for form in forms:
            assert_that(form, contains_string(f'name="csrf_token" value="{csrf(frontend)}"'))
            assert_that(form, contains_string('name="next" value="/'))


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(frontend, journal):
    journal.create_day(DAY)
    page(frontend, "/")

    response = frontend.post(f"/days/{DAY}/tasks", data={"text": "forged", "csrf_token": "wrong"})

    assert_that(response.status_code, equal_to(403))
    assert_that(response.get_data(as_text=True), contains_string("This form has expired"))
    assert_that(tree_of(journal), equal_to([]))


def test_pages_send_the_security_headers(frontend):
    headers = frontend.get("/").headers

    assert_that(headers["Content-Security-Policy"], contains_string("script-src 'self'"))
    assert_that(headers["Content-Security-Policy"], contains_string("frame-ancestors 'none'"))
    assert_that(headers["Content-Security-Policy"], is_not(contains_string("unsafe-inline")))
    assert_that(dict(headers), has_entries({"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                                            "X-Frame-Options": "DENY", "Cache-Control": "no-store"}))


def test_no_template_holds_inline_script_or_style():
    from pathlib import Path

    for template in (Path(__file__).parents[1] / "frontend" / "templates").glob("*.html"):
        html = re.sub(r"{#.*?#}", "", template.read_text(), flags=re.S)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), template.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=|hx-on", html), template.name


def test_the_session_cookie_is_http_only_and_same_site_lax(frontend):
    cookie = frontend.get("/").headers["Set-Cookie"]

    assert_that(cookie, contains_string("kyb_session="))
    assert_that(cookie, contains_string("HttpOnly"))
    assert_that(cookie, contains_string("SameSite=Lax"))
    assert_that(cookie, is_not(contains_string("Secure")))


def test_the_session_cookie_is_secure_when_configured(backend_server, redis_server, journal):
    from frontend import create_app

    app = create_app(frontend_settings(redis_server, BACKEND_URL=backend_server.url, SESSION_COOKIE_SECURE=True))

    response = app.test_client().get("/")
    assert_that(response.headers["Set-Cookie"], contains_string("Secure"))
    assert_that(response.headers["Strict-Transport-Security"], equal_to("max-age=31536000"))


def test_a_page_answers_with_the_request_id_it_was_given(frontend, journal):
    response = frontend.get("/", headers={"X-Request-ID": "trace-me-123"})

    assert_that(response.headers["X-Request-ID"], equal_to("trace-me-123"))


def test_the_probes_answer(frontend):
    assert_that(frontend.get("/healthz").get_json(), equal_to({"status": "ok"}))
    assert_that(frontend.get("/readyz").get_json(), equal_to({"status": "ok", "backend": "ok"}))
