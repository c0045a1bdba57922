"""Signing in to the web UI in Debian's Chromium, with a real Keycloak and a backend that
trusts nothing but Keycloak's tokens: the login form, the journal of the user signed in,
no token in the browser, and a sign-out that ends the Keycloak session too."""
import datetime as dt
import re

import pytest
import requests
from hamcrest import assert_that, equal_to, has_length, less_than
from playwright.sync_api import expect

from tests.api import texts
from tests.stack import AppServer, frontend_settings, open_page, screenshot

TODAY = dt.date.today().isoformat()
JWT = re.compile(r"[\w-]+\.[\w-]+\.[\w-]+")


@pytest.fixture(scope="module")
def frontend_signing_in(keycloak, signed_in_backend, redis_server, tmp_path_factory):
    """The frontend under gunicorn, signing users in at the test Keycloak."""
    server = AppServer("frontend", frontend_settings(
        redis_server, BACKEND_URL=signed_in_backend.url, AUTH_DEV_USER="", OIDC_ISSUER=keycloak.issuer,
        OIDC_CLIENT_ID=keycloak.frontend_client_id, OIDC_CLIENT_SECRET=keycloak.frontend_client_secret,
        LOG_LEVEL="WARNING"), tmp_path_factory.mktemp("frontend-signing-in") / "frontend.log")
    yield server
    server.stop()


def journal_of(keycloak, backend, username, date):
    """The day as the backend answers it to `username`'s own token."""
    token = keycloak.token(username)["access_token"]
    response = requests.get(f"{backend.url}/api/v1/days/{date}", headers={"Authorization": f"Bearer {token}"},
                            timeout=10)
    assert_that(response.status_code, equal_to(200))
    return response.json()


def expect_keycloak_login(tab, keycloak):
    expect(tab.locator("#kc-form-login")).to_be_visible()
    assert tab.url.startswith(keycloak.authorization_url + "?"), tab.url


def test_ann_signs_in_at_keycloak_keeps_her_journal_and_signs_out_of_both(browser, keycloak, signed_in_backend,
                                                                          frontend_signing_in):
    # localhost, while Keycloak is 127.0.0.1: the frontend's cookies are apart from Keycloak's.
    base = frontend_signing_in.url.replace("127.0.0.1", "localhost")
    context, tab = open_page(browser, base)

    tab.goto("/")
    expect_keycloak_login(tab, keycloak)
    screenshot(tab, "signin-keycloak-login")
    tab.locator("#username").fill("ann")
    tab.locator("#password").fill("ann-password")
    tab.locator("#kc-login").click()
    expect(tab).to_have_url(f"{base}/")
    expect(tab.locator("header .user")).to_have_text("ann")

    tab.get_by_role("button", name="Start the day").click()
    tab.get_by_label("New task").fill("Sign in with Keycloak")
    tab.get_by_role("button", name="Add task").click()
    expect(tab.locator("#tasks .text", has_text="Sign in with Keycloak")).to_be_visible()
    screenshot(tab, "signin-journal-of-ann")
    assert_that(texts(journal_of(keycloak, signed_in_backend, "ann", TODAY)["tasks"]),
                equal_to(["Sign in with Keycloak"]))

    cookies = context.cookies([base])
    assert_that([cookie["name"] for cookie in cookies], equal_to(["kyb_session"]))
    for cookie in cookies:
        assert not JWT.search(cookie["value"]), f"{cookie['name']} looks like it holds a token"
        assert_that(cookie["value"], has_length(less_than(64)))
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax", cookie

    tab.get_by_role("button", name="Sign out").click()
    expect_keycloak_login(tab, keycloak)
    tab.goto("/days")
    expect_keycloak_login(tab, keycloak)
    assert_that(tab.problems, equal_to([]))
    context.close()
