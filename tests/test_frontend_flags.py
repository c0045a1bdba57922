"""The frontend honours the feature flags: each page asks the backend (GET /api/v1/flags,
once) and hides what is switched off; a write sent from a page older than the flag gets
the backend's message back on that page. The backend reads a flag file swapped the way
kubelet swaps a ConfigMap volume, so a test changes flags as an operator would."""
import copy
import io
import json
import re
import time
from pathlib import Path

import pytest
import requests
from hamcrest import assert_that, contains_string, equal_to, is_not, matches_regexp

from frontend.backend_client import Backend, BackendUnavailable, NotFound
from tests.kubelet import ConfigMapVolume
from tests.stack import run_backend

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = json.loads((ROOT / "config" / "flags.json").read_text())
DAY, NEXT_DAY = "2026-11-24", "2026-11-25"
FLAG_WAIT_SECONDS = 2.0


def for_demo(variant, otherwise):
    """Targeting that gives the default user `demo` (the one the frontend is, until sign-in) `variant`."""
    return {"if": [{"==": [{"var": "targetingKey"}, "demo"]}, variant, otherwise]}


def document(targeting=None, **variants):
    """The shipped flag document with some default variants (and targeting rules) changed."""
    doc = copy.deepcopy(SHIPPED)
    for name, variant in variants.items():
        doc["flags"][name]["defaultVariant"] = variant
    for name, rule in (targeting or {}).items():
        doc["flags"][name]["targeting"] = rule
    return json.dumps(doc, indent=2)


def post(client, path, data=None, **kwargs):
    """Submit a form as a browser does: with the session's CSRF token."""
    with client.session_transaction() as session:
        token = session.setdefault("csrf_token", "token-of-this-test-session")
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def dates(journal):
    return [day["date"] for day in journal.call("GET", "/days")["items"]]


def backend_flags(url):
    """The backend's answer to the frontend's flags call (no user header: the default user)."""
    return requests.get(f"{url}/api/v1/flags", timeout=5).json()


@pytest.fixture(scope="module")
def flags_volume(tmp_path_factory):
    """The flag file as the kyb-flags ConfigMap volume holds it, with the shipped flags."""
    return ConfigMapVolume(tmp_path_factory.mktemp("flags"), {"flags.json": document()})


@pytest.fixture(scope="module")
def backend_server(mongodb_uri, redis_server, redis_url, flags_volume, tmp_path_factory):
    """tests.stack's backend_server, reading its flags from `flags_volume` (so every stack
    fixture of this module, the frontend's included, runs against these flags)."""
    yield from run_backend(mongodb_uri, redis_server, redis_url, tmp_path_factory,
                           FLAGS_FILE=str(flags_volume.root / "flags.json"))


@pytest.fixture(autouse=True)
def set_flags(flags_volume, backend_server):
    """set_flags(targeting={...}, **default_variants): swap the flag file and wait (polling, at
    most FLAG_WAIT_SECONDS) until the backend answers with it. The shipped flags come back after."""
    current = {"text": document()}

    def swap(targeting=None, **variants):
        text = document(targeting, **variants)
        if text == current["text"]:
            return
        before = backend_flags(backend_server.url)["version"]
        flags_volume.update({"flags.json": text})
        current["text"] = text
        deadline = time.monotonic() + FLAG_WAIT_SECONDS
        while (answer := backend_flags(backend_server.url))["version"] == before:
            assert time.monotonic() < deadline, f"the backend still answers the old flags: {answer}"
            time.sleep(0.02)
        assert answer["error"] is None, answer

    yield swap
    swap()


@pytest.fixture
def backend_calls(monkeypatch):
    """The paths of every call the frontend makes to the backend, in order."""
    calls = []
    original = Backend.call

    def recording(self, method, path, **kwargs):
        calls.append((method, path))
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(Backend, "call", recording)
    return calls


def nav(html):
    """The main menu's part of a page."""
    return html.partition('<nav aria-label="Main">')[2].partition("</nav>")[0]


# -- fetching ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", f"/days/{DAY}", "/days", "/backlog", "/notes", "/stats", "/import",
                                  "/export", "/days/2020-02-30"])
def test_each_page_asks_the_backend_for_its_flags_once(frontend, backend_calls, path):
    frontend.get(path)

    assert_that(backend_calls.count(("GET", "/api/v1/flags")), equal_to(1))


def test_a_redirect_and_the_probes_do_not_ask_for_flags(frontend, backend_calls):
    post(frontend, "/days", {"date": DAY})
    frontend.get("/healthz")
    frontend.get("/static/kyb.css")

    assert_that(backend_calls, equal_to([("POST", "/api/v1/days")]))


def test_a_flag_change_shows_on_the_next_page(frontend, set_flags):
    assert_that(page(frontend, "/"), contains_string('data-theme="light"'))

    set_flags(ui_theme="dark")

    assert_that(page(frontend, "/"), contains_string('data-theme="dark"'))


@pytest.mark.parametrize("failure", [BackendUnavailable("backend answered 500"),
                                     NotFound(404, "not_found", "No such route.")])
def test_pages_render_with_safe_defaults_when_the_flags_cannot_be_had(frontend, journal, monkeypatch, failure):
    journal.create_day(DAY)
    journal.add_task(DAY, "open task")
    original = Backend.call

    def failing_flags(self, method, path, **kwargs):
        if path == "/api/v1/flags":
            raise failure
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(Backend, "call", failing_flags)

    html = page(frontend, f"/days/{DAY}")
    assert_that(html, contains_string('data-theme="light"'))
    assert_that(nav(html), contains_string(">Import<"))
    assert_that(nav(html), contains_string(">Stats<"))
    assert_that(html, contains_string("Carry over"))
    assert_that(html, contains_string("Add task"))
    assert_that(html, is_not(contains_string("read-only")))
    assert_that(html, is_not(contains_string("<progress")))


def test_a_flags_answer_of_the_wrong_shape_falls_back_per_flag(monkeypatch):
    answer = {"flags": {"read_only": "yes", "stats": False, "ui_theme": "neon"}, "version": "x", "error": None}
    monkeypatch.setattr(Backend, "json", lambda self, method, path, **kwargs: answer)

    flags = Backend("http://127.0.0.1:1", 100).flags()

    assert_that(flags, equal_to({"read_only": False, "markdown_import": True, "stats": False, "carry_over": True,
                                 "ui_theme": "light", "progress_bar": False}))


# -- the shipped flags -----------------------------------------------------------------

def test_with_the_shipped_flags_every_feature_is_offered(frontend, journal):
    journal.create_day(DAY)
    journal.add_task(DAY, "open task")

    html = page(frontend, f"/days/{DAY}")

    assert_that(html, contains_string('<html lang="en" data-theme="light">'))
    assert_that(nav(html), contains_string(">Import<"))
    assert_that(nav(html), contains_string(">Stats<"))
    assert_that(html, contains_string("Carry over"))
    assert_that(html, is_not(contains_string('class="banner"')))


# -- markdown_import, stats, carry_over ----------------------------------------------

def test_import_off_hides_its_menu_entry_and_page(frontend, journal, set_flags):
    set_flags(markdown_import="off")

    html = page(frontend, "/days")
    response = frontend.get("/import")

    assert_that(nav(html), is_not(contains_string("Import")))
    assert_that(html, is_not(contains_string("import your log")))
    assert_that(response.status_code, equal_to(404))
    assert_that(response.get_data(as_text=True), contains_string("Switched off"))
    assert_that(response.get_data(as_text=True), contains_string("Markdown import is switched off"))


def test_an_import_sent_from_a_page_older_than_the_switch_is_refused_politely(frontend, journal, set_flags):
    set_flags(markdown_import="off")

    response = post(frontend, "/import", {"mode": "merge", "next": "/days",
                                          "file": (io.BytesIO(b"## Dag 5.1.26\n- [ ] x\n"), "x.md")},
                    follow_redirects=True)

    html = response.get_data(as_text=True)
    assert_that(response.status_code, equal_to(200))
    assert_that(html, contains_string('<p class="message error">Markdown import is switched off'))
    assert_that(dates(journal), equal_to([]))


def test_stats_off_hides_its_menu_entry_and_page(frontend, journal, set_flags):
    set_flags(stats="off")

    html = page(frontend, "/")
    response = frontend.get("/stats")

    assert_that(nav(html), is_not(contains_string("Stats")))
    assert_that(response.status_code, equal_to(404))
    assert_that(response.get_data(as_text=True), contains_string("Switched off"))
    assert_that(response.get_data(as_text=True), contains_string("Statistics is switched off"))


def test_carry_over_off_leaves_the_form_out_and_the_route_refuses_politely(frontend, journal, set_flags):
    journal.create_day(DAY)
    journal.add_task(DAY, "open task")
    assert_that(page(frontend, f"/days/{DAY}"), contains_string("Carry over"))

    set_flags(carry_over="off")

    assert_that(page(frontend, f"/days/{DAY}"), is_not(contains_string("Carry over")))
    response = post(frontend, f"/days/{DAY}/carry-over", {"to": NEXT_DAY, "next": f"/days/{DAY}"},
                    headers={"HX-Request": "true"})
    assert_that(response.status_code, equal_to(303))
    assert_that(response.headers["Location"], equal_to(f"/days/{DAY}"))
    assert_that(page(frontend, f"/days/{DAY}"), contains_string("Carry-over is switched off (flag carry_over)."))
    assert_that(dates(journal), equal_to([DAY]))


# -- read_only -------------------------------------------------------------------------

@pytest.fixture
def read_only_journal(journal, set_flags):
    """A day with an open task and a note, a backlog item; then the journal goes read-only."""
    journal.create_day(DAY, start="09:00", end="17:00")
    task = journal.add_task(DAY, "open task")
    journal.call("POST", "/backlog", json={"text": "someday"})
    note = journal.call("POST", "/notes", json={"text": "a note", "date": DAY})
    set_flags(read_only="on")
    return {"task": task["id"], "note": note["id"]}


READ_ONLY_PAGES = ["/", f"/days/{DAY}", "/days", "/backlog", "/notes", "/tasks/{task}", "/notes/{note}",
                   f"/days/{DAY}/delete", "/import", "/export", "/stats", "/weeks/2026-W48", "/days/2020-02-30"]


@pytest.mark.parametrize("path", READ_ONLY_PAGES)
def test_read_only_shows_a_banner_and_offers_no_form_that_writes(frontend, read_only_journal, path):
    response = frontend.get(path.format(**read_only_journal))

    html = response.get_data(as_text=True)
    assert_that(html, contains_string("read-only for maintenance"))
    # Signing out changes no journal: its form stays.
    assert_that(re.findall(r'<form[^>]*method="post"[^>]*action="([^"]*)"', html), equal_to(["/auth/logout"]))


def test_read_only_still_shows_the_day(frontend, read_only_journal):
    html = page(frontend, f"/days/{DAY}")

    assert_that(html, contains_string("open task"))
    assert_that(html, contains_string("09:00 – 17:00"))
    assert_that(html, contains_string("a note"))
    assert_that(html, contains_string("paused while the journal is read-only"))


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_a_write_from_a_page_older_than_read_only_gets_the_backend_s_message(frontend, read_only_journal, htmx):
    headers = {"HX-Request": "true"} if htmx else {}

    response = post(frontend, f"/days/{DAY}/tasks", {"text": "too late", "next": f"/days/{DAY}"},
                    headers=headers, follow_redirects=True)

    html = response.get_data(as_text=True)
    assert_that(response.status_code, equal_to(200))
    assert_that(html, contains_string('<p class="message error">The journal is read-only for maintenance right now'))
    assert_that(html, is_not(contains_string("too late")))
    assert_that(html, is_not(contains_string("Traceback")))


def test_a_new_day_asked_for_while_read_only_is_refused_on_the_page_it_came_from(frontend, read_only_journal):
    response = post(frontend, "/days", {"date": NEXT_DAY, "next": "/days"})

    assert_that(response.status_code, equal_to(303))
    assert_that(response.headers["Location"], equal_to("/days"))
    assert_that(page(frontend, "/days"), contains_string("read-only for maintenance right now"))


# -- ui_theme and progress_bar ------------------------------------------------------------

@pytest.mark.parametrize("theme", ["light", "dark", "contrast"])
def test_the_theme_is_the_flag_s_variant(frontend, journal, set_flags, theme):
    set_flags(ui_theme=theme)

    for path in ("/", "/backlog", "/days/2020-02-30"):
        assert_that(frontend.get(path).get_data(as_text=True), contains_string(f'<html lang="en" data-theme="{theme}">'))


def test_every_theme_has_its_colours_in_the_stylesheet():
    css = (ROOT / "frontend" / "static" / "kyb.css").read_text()

    for theme in ("dark", "contrast"):
        assert_that(css, contains_string(f'[data-theme="{theme}"] {{'))


def test_the_progress_bar_follows_the_rollout_for_the_default_user(frontend, journal):
    journal.create_day(DAY)
    journal.add_task(DAY, "open task")

    rolled_out = backend_flags(journal.api.removesuffix("/api/v1"))["flags"]["progress_bar"]

    html = page(frontend, f"/days/{DAY}")
    assert_that("<progress" in html, equal_to(rolled_out))


@pytest.mark.parametrize("bucket", ["on", "off"])
def test_the_progress_bar_shows_done_of_total_for_a_user_in_the_on_bucket(frontend, journal, set_flags, bucket):
    journal.create_day(DAY)
    done = journal.add_task(DAY, "done task")
    journal.call("PATCH", f"/tasks/{done['id']}", json={"done": True})
    journal.add_task(DAY, "open task")
    journal.add_task(DAY, "another open task")
    other = "off" if bucket == "on" else "on"
    set_flags(targeting={"progress_bar": for_demo(bucket, {"fractional": [[other, 50], [bucket, 50]]})})
    assert_that(backend_flags(journal.api.removesuffix("/api/v1"))["flags"]["progress_bar"], equal_to(bucket == "on"))

    html = page(frontend, f"/days/{DAY}")

    if bucket == "on":
        assert_that(html, contains_string('<label for="day-progress">Tasks done</label>'))
        assert_that(html, matches_regexp(r'<progress id="day-progress" max="3" value="1">1 of 3</progress>'))
    else:
        assert_that(html, is_not(contains_string("<progress")))


def test_no_progress_bar_for_a_day_without_tasks(frontend, journal, set_flags):
    journal.create_day(DAY)
    set_flags(targeting={"progress_bar": for_demo("on", "off")})

    assert_that(page(frontend, f"/days/{DAY}"), is_not(contains_string("<progress")))
