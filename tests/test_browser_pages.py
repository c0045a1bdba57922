"""Every page in Chromium: a screenshot for people to look at (test-artifacts/screenshots/),
no Content-Security-Policy violation or script error, and no serious or critical axe-core
finding. The journal is the seed log plus today with a small task tree."""
import datetime as dt

import pytest
from hamcrest import assert_that, empty, equal_to

from tests import servers
from tests.api import SEED
from tests.stack import AppServer, Journal, axe_violations, frontend_settings, open_page, screenshot

TODAY = dt.date.today().isoformat()
PHONE = {"width": 390, "height": 844}

# (screenshot name, path); {task} and {note} are ids from the seeded journal.
PAGES = [
    ("today", "/"),
    ("day-seed", "/days/2020-03-19"),
    ("day-not-written", "/days/2026-01-01"),
    ("week", "/weeks/2020-W12"),
    ("days", "/days"),
    ("backlog", "/backlog"),
    ("notes", "/notes"),
    ("task-edit", "/tasks/{task}"),
    ("note-edit", "/notes/{note}"),
    ("day-delete", "/days/2020-03-20/delete"),
    ("import", "/import"),
    ("export", "/export"),
    ("stats", "/stats"),
    ("not-found", "/days/2020-02-30"),
]
PHONE_PAGES = ["today", "day-seed", "backlog", "stats", "notes"]


@pytest.fixture(scope="module")
def seeded(backend_server):
    """The seed log, and today with nested, done and Markdown tasks and a note."""
    journal = Journal(backend_server.url)
    journal.import_markdown(SEED)
    journal.create_day(TODAY, start="08:30", end="16:30")
    cluster = journal.add_task(TODAY, "Set up the **cluster**")
    kubectl = journal.add_task(TODAY, "Install `kubectl`: https://kubernetes.io/docs/tasks/tools/", parent_id=cluster["id"])
    journal.add_task(TODAY, "Enable nested VT-x", parent_id=kubectl["id"])
    done = journal.add_task(TODAY, "Read the *Flask* tutorial")
    journal.call("PATCH", f"/tasks/{done['id']}", json={"done": True})
    note = journal.call("POST", "/notes", json={"text": "## Minikube\n`minikube start`: start the cluster",
                                                "date": TODAY})
    return {"task": kubectl["id"], "note": note["id"]}


@pytest.fixture(scope="module")
def frontend_without_backend(redis_server, tmp_path_factory):
    """The frontend pointed at a port where nothing listens."""
    nowhere = f"http://127.0.0.1:{servers.free_port()}"
    server = AppServer("frontend", frontend_settings(redis_server, BACKEND_URL=nowhere, BACKEND_TIMEOUT_MS="500",
                                                     LOG_LEVEL="WARNING"),
                       tmp_path_factory.mktemp("frontend-alone") / "frontend.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def axe_tab(browser, frontend_server, seeded):
    """One tab for every page of the module; axe-core is injected as an inline script, which
    the pages' CSP would refuse, so this tab bypasses the CSP (test_no_page_breaks... does not)."""
    context, page = open_page(browser, frontend_server.url, bypass_csp=True)
    yield page
    context.close()


def expected_status(name):
    return 404 if name == "not-found" else 200


@pytest.mark.parametrize("name, path", PAGES, ids=[name for name, _ in PAGES])
def test_a_page_has_no_serious_accessibility_violation(axe_tab, seeded, name, path):
    response = axe_tab.goto(path.format(**seeded))
    screenshot(axe_tab, name)

    assert_that(response.status, equal_to(expected_status(name)))
    assert_that(axe_violations(axe_tab), empty())


def test_no_page_breaks_its_content_security_policy_or_fails_to_load_a_file(browser, frontend_server, seeded):
    context, page = open_page(browser, frontend_server.url)
    for name, path in PAGES:
        response = page.goto(path.format(**seeded))
        # The browser reports an error status of the page itself as a console error.
        problems = [p for p in page.problems if f"status of {response.status}" not in p or response.ok]
        assert_that((name, problems), equal_to((name, [])))
        page.problems.clear()
    context.close()


@pytest.mark.parametrize("name", PHONE_PAGES)
def test_a_page_fits_a_phone_screen(browser, frontend_server, seeded, name):
    path = dict(PAGES)[name].format(**seeded)
    context, page = open_page(browser, frontend_server.url, viewport=PHONE)
    page.goto(path)
    screenshot(page, f"{name}-phone")

    assert_that(page.evaluate("document.documentElement.scrollWidth"), equal_to(PHONE["width"]))
    context.close()


def test_the_page_for_a_backend_that_is_down_is_friendly_and_accessible(browser, frontend_without_backend):
    context, page = open_page(browser, frontend_without_backend.url, bypass_csp=True)
    response = page.goto("/")
    screenshot(page, "backend-down")

    assert_that(response.status, equal_to(503))
    assert_that(page.get_by_role("heading", level=1).inner_text(), equal_to("The journal is unavailable"))
    assert_that(axe_violations(page), empty())
    context.close()


def test_a_refused_form_is_accessible(axe_tab):
    page = axe_tab
    page.goto(f"/days/{TODAY}")
    page.get_by_label("Start").fill("17:00")
    page.get_by_label("End").fill("09:00")
    page.get_by_role("button", name="Save hours").click()
    page.get_by_text("must be after start").wait_for()
    screenshot(page, "today-refused-hours")

    assert_that(axe_violations(page), empty())


def test_the_import_result_is_accessible(axe_tab):
    page = axe_tab
    page.goto("/import")
    page.get_by_label("Markdown file").set_input_files(
        files=[{"name": "more.md", "mimeType": "text/markdown", "buffer": b"## Dag 5.1.26 9:00 - 17:00\n- [ ] more\n"}])
    page.get_by_role("button", name="Import").click()
    page.get_by_role("heading", name="Imported more.md (merge)").wait_for()
    screenshot(page, "import-result")

    assert_that(axe_violations(page), empty())
