"""The flags in Chromium: each ui_theme passes axe-core (contrast included), the read-only
banner and a write sent from a page older than the switch, and the rollout's progress bar.
Screenshots go to test-artifacts/screenshots/flags-*.png for people to look at."""
import datetime as dt

import pytest
from hamcrest import assert_that, empty, equal_to, is_not

from tests.api import SEED
from tests.stack import axe_violations, open_page, screenshot
# The module's backend reads a flag file that set_flags swaps as kubelet would.
from tests.test_frontend_flags import backend_server, flags_volume, for_demo, set_flags  # noqa: F401

TODAY = dt.date.today().isoformat()
THEMES = ["light", "dark", "contrast"]
PROGRESS_ON = {"progress_bar": for_demo("on", "off")}
# The page background of each theme (the --page custom property), as the browser computes it.
BACKGROUNDS = {"light": "rgb(243, 245, 247)", "dark": "rgb(20, 24, 29)", "contrast": "rgb(0, 0, 0)"}


@pytest.fixture
def today(journal):
    """The seed log, and today with a nested task, a done task, an open one and a note."""
    journal.import_markdown(SEED)
    journal.create_day(TODAY, start="08:30", end="16:30")
    cluster = journal.add_task(TODAY, "Set up the **cluster**")
    journal.add_task(TODAY, "Install `kubectl`", parent_id=cluster["id"])
    done = journal.add_task(TODAY, "Read the *Flask* tutorial")
    journal.call("PATCH", f"/tasks/{done['id']}", json={"done": True})
    journal.call("POST", "/notes", json={"text": "## Minikube\n`minikube start`", "date": TODAY})
    return journal


@pytest.fixture
def tab(browser, frontend_server):
    """A tab that bypasses the CSP: axe-core is injected as an inline script."""
    context, page = open_page(browser, frontend_server.url, bypass_csp=True)
    yield page
    context.close()


@pytest.mark.parametrize("theme", THEMES)
def test_each_theme_passes_axe_on_every_kind_of_page(tab, today, set_flags, theme):
    set_flags(ui_theme=theme, targeting=PROGRESS_ON)
    for name, path in [("today", "/"), ("stats", "/stats"), ("backlog", "/backlog"), ("import", "/import"),
                       ("not-found", "/days/2020-02-30")]:
        tab.goto(path)
        screenshot(tab, f"flags-theme-{theme}-{name}")

        assert_that(tab.evaluate("document.documentElement.dataset.theme"), equal_to(theme))
        assert_that(tab.evaluate("getComputedStyle(document.documentElement).backgroundColor"),
                    equal_to(BACKGROUNDS[theme]))
        assert_that((name, axe_violations(tab)), equal_to((name, [])))


@pytest.mark.parametrize("theme", THEMES)
def test_read_only_shows_a_banner_and_a_stale_write_gets_the_backend_s_message(tab, today, set_flags, theme):
    set_flags(ui_theme=theme)
    tab.goto("/")
    set_flags(ui_theme=theme, read_only="on")  # the page in the tab still offers its forms

    tab.get_by_label("New task").fill("too late")
    tab.get_by_role("button", name="Add task").click()  # sent by htmx
    tab.locator("#messages").get_by_text("read-only for maintenance right now").wait_for()
    screenshot(tab, f"flags-read-only-{theme}")

    assert_that(tab.locator(".banner").inner_text(), is_not(empty()))
    assert_that(tab.get_by_role("button", name="Add task").count(), equal_to(0))
    assert_that(tab.get_by_text("too late").count(), equal_to(0))
    assert_that(axe_violations(tab), empty())
    tab.reload()
    assert_that(tab.get_by_text("The journal is read-only for maintenance.").is_visible(), equal_to(True))


def test_the_progress_bar_is_labelled_and_follows_a_tick(tab, today, set_flags):
    set_flags(targeting=PROGRESS_ON)
    tab.goto("/")
    bar = tab.get_by_role("progressbar", name="Tasks done")

    assert_that((bar.get_attribute("value"), bar.get_attribute("max")), equal_to(("1", "3")))
    tab.get_by_role("button", name="Done: Install").click()  # htmx swaps the task list
    tab.locator('#day-progress[value="2"]').wait_for()
    screenshot(tab, "flags-progress-bar")

    assert_that(axe_violations(tab), empty())


def test_no_progress_bar_for_a_user_outside_the_rollout(tab, today, set_flags):
    set_flags(targeting={"progress_bar": for_demo("off", "on")})
    tab.goto("/")

    assert_that(tab.get_by_role("progressbar").count(), equal_to(0))
