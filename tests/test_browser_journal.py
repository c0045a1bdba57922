"""End to end in Debian's Chromium: a person keeps a day, carries it over, imports their
log and exports it back, looks at the charts; with JavaScript (htmx) and without."""
import datetime as dt

import pytest
from hamcrest import assert_that, empty, equal_to, greater_than
from playwright.sync_api import expect

from tests.api import SEED, SEED_PATH, texts
from tests.stack import open_page, screenshot

TODAY = dt.date.today()
TOMORROW = (TODAY + dt.timedelta(days=1)).isoformat()


@pytest.fixture(params=[True, False], ids=["with-js", "without-js"])
def tab(request, browser, frontend_server, journal):
    """A browser tab on an empty journal, with JavaScript on and then off."""
    context, page = open_page(browser, frontend_server.url, java_script_enabled=request.param)
    page.javascript = request.param
    yield page
    context.close()


def add_task(page, text, under=None):
    page.get_by_label("New task").fill(text)
    if under:
        page.get_by_label("Under").select_option(label=under)
    page.get_by_role("button", name="Add task").click()
    expect(page.locator("#tasks .text", has_text=text)).to_be_visible()


def tick(page, text):
    page.get_by_role("button", name=f"Done: {text}", exact=True).click()
    expect(page.get_by_role("button", name=f"Done: {text}", exact=True)).to_have_attribute("aria-pressed", "true")


def test_a_day_is_started_planned_ticked_and_carried_over_to_tomorrow(tab, journal):
    tab.goto("/")
    tab.get_by_label("Start").fill("08:30")
    tab.get_by_label("End").fill("16:30")
    tab.get_by_role("button", name="Start the day").click()
    expect(tab.get_by_role("heading", name="Hours 8:00 h")).to_be_visible()
    if tab.javascript:
        tab.evaluate("window.stillTheSamePage = true")

    add_task(tab, "Set up the cluster")
    add_task(tab, "Install kubectl", under="Set up the cluster")
    add_task(tab, "Install minikube")
    tab.get_by_role("button", name="Nest under the task above: Install minikube").click()
    expect(tab.locator("#tasks .tasks .tasks .text", has_text="Install minikube")).to_be_visible()
    add_task(tab, "Write the README")
    tick(tab, "Install kubectl")
    screenshot(tab, f"flow-today-planned-{'js' if tab.javascript else 'nojs'}")

    expect(tab.get_by_label("Carry unfinished tasks to")).to_have_value(TOMORROW)
    tab.get_by_role("button", name="Carry over").click()
    expect(tab.locator("#messages")).to_contain_text("Carried 3 unfinished tasks to")
    if tab.javascript:
        assert tab.evaluate("window.stillTheSamePage"), "htmx should have changed the page in place"

    tab.get_by_role("link", name=f"Next day, {TOMORROW}").click()
    expect(tab.locator("#tasks .text", has_text="Write the README")).to_be_visible()
    screenshot(tab, f"flow-tomorrow-carried-{'js' if tab.javascript else 'nojs'}")
    assert_that(texts(journal.day(TODAY.isoformat())["tasks"]),
                equal_to(["Set up the cluster", "  Install kubectl", "  Install minikube", "Write the README"]))
    assert_that(texts(journal.day(TOMORROW)["tasks"]),
                equal_to(["Set up the cluster", "  Install minikube", "Write the README"]))
    assert_that(tab.problems, empty())


def test_the_seed_log_is_imported_and_exported_byte_for_byte_and_charted(tab):
    tab.goto("/import")
    tab.get_by_label("Markdown file").set_input_files(str(SEED_PATH))
    tab.get_by_label("Replace: the journal becomes exactly this file").check()
    tab.get_by_role("button", name="Import").click()
    expect(tab.get_by_role("heading", name="Imported worklog.md (replace)")).to_be_visible()
    expect(tab.get_by_role("row", name="Days 3")).to_be_visible()

    tab.goto("/export")
    with tab.expect_download() as download:
        tab.get_by_role("button", name="Download Markdown").click()
    assert_that(download.value.suggested_filename, equal_to("kyb-worklog.md"))
    with open(download.value.path(), "rb") as exported:
        assert_that(exported.read(), equal_to(SEED))

    tab.goto("/stats")
    chart = tab.get_by_role("img", name="Hours per day")
    expect(chart).to_be_visible()
    assert_that(chart.locator("rect.bar").count(), equal_to(3))
    assert_that(chart.bounding_box()["height"], greater_than(100))
    expect(tab.get_by_role("row", name="2020-03-19 8:00 27 0")).to_be_visible()
    assert_that(tab.problems, empty())


def test_a_refused_task_shows_its_message_next_to_the_field(tab, journal):
    journal.create_day("2026-11-24")
    tab.goto("/days/2026-11-24")
    if tab.javascript:
        tab.evaluate("window.stillTheSamePage = true")

    tab.get_by_role("button", name="Add task").click()

    field = tab.get_by_label("New task")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description("Write what the task is.")
    if tab.javascript:
        assert tab.evaluate("window.stillTheSamePage")


def test_a_backlog_item_is_moved_onto_a_day(tab, journal):
    journal.call("POST", "/backlog", json={"text": "Set up Keycloak"})
    tab.goto("/backlog")

    tab.get_by_label("Item", exact=True).select_option(label="Set up Keycloak")
    tab.get_by_label("Day", exact=True).fill("2026-11-26")
    tab.get_by_role("button", name="Move to day").click()

    expect(tab.locator("#messages")).to_contain_text("Moved to Thursday 26 November 2026.")
    assert_that(texts(journal.day("2026-11-26")["tasks"]), equal_to(["Set up Keycloak"]))


def test_the_keyboard_alone_ticks_a_task_and_keeps_the_focus_on_it(page, journal):
    journal.create_day("2026-11-24")
    task = journal.add_task("2026-11-24", "by keyboard")
    page.goto("/days/2026-11-24")

    page.get_by_role("button", name="Done: by keyboard").focus()
    page.keyboard.press("Space")

    expect(page.get_by_role("button", name="Done: by keyboard")).to_have_attribute("aria-pressed", "true")
    assert_that(page.evaluate("document.activeElement.id"), equal_to(f"tick-{task['id']}"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Done: by keyboard")).to_have_attribute("aria-pressed", "false")
