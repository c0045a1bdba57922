"""Sign-in to the web UI with a real Keycloak (tests/keycloak.py), over HTTP: the frontend's
test client on one side, Keycloak's real login form filled in with `requests` on the other,
a backend that trusts Keycloak's tokens only, and the sessions in a real Redis.
(tests/test_browser_signin.py walks the same way in Chromium.)
"""
import time
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import redis
import requests
from hamcrest import (assert_that, contains_string, equal_to, greater_than, has_entries, has_length, is_not,
                      less_than, starts_with)

from frontend import create_app
from frontend.auth import REFRESH_MARGIN_SECONDS
from frontend.sessions import KEY_PREFIX
from tests import servers
from tests.stack import frontend_settings
from tests.test_keycloak_realm import sign_in as fill_in_login_form

COOKIE = "kyb_session"


@pytest.fixture(scope="module")
def settings(keycloak, signed_in_backend, redis_server):
    return frontend_settings(redis_server, BACKEND_URL=signed_in_backend.url, AUTH_DEV_USER="",
                             OIDC_ISSUER=keycloak.issuer, OIDC_CLIENT_ID=keycloak.frontend_client_id,
                             OIDC_CLIENT_SECRET=keycloak.frontend_client_secret, TESTING=True)


@pytest.fixture(scope="module")
def web(settings):
    """The frontend app; each test gets its own test client (its own cookies)."""
    return create_app(settings)


@pytest.fixture
def client(web):
    return web.test_client()


def callback_path(location):
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


def through_keycloak(keycloak, client, username, login_response):
    """Follow the frontend's redirect to Keycloak, fill in its login form; Keycloak's redirect
    back to the frontend's callback, and the browser-side session at Keycloak."""
    assert_that(login_response.status_code, equal_to(302))
    at_keycloak = requests.Session()
    form = at_keycloak.get(login_response.headers["Location"], timeout=30)
    back = fill_in_login_form(keycloak, at_keycloak, form, username)
    assert_that(back.status_code, equal_to(302))
    return back.headers["Location"], at_keycloak


def sign_in(keycloak, client, username, next_page="/"):
    """Sign the client in as `username`; the callback's response."""
    location, _ = through_keycloak(keycloak, client, username, client.get(f"/auth/login?next={quote(next_page)}"))
    return client.get(callback_path(location))


def sent_to_sign_in(response, next_page, status=302):
    """True if the response sends the browser to sign in, to come back to `next_page`."""
    location = urlsplit(response.headers.get("Location", ""))
    assert_that((response.status_code, location.path, parse_qs(location.query)),
                equal_to((status, "/auth/login", {"next": [next_page]})))
    return True


def session_of(client):
    with client.session_transaction() as session:
        return dict(session)


def set_in_session(client, name, value):
    with client.session_transaction() as session:
        session[name] = value


def csrf(client):
    with client.session_transaction() as session:
        return session.setdefault("csrf_token", "token-of-this-test")


def page_text(client, path):
    response = client.get(path)
    assert_that(response.status_code, equal_to(200))
    return response.get_data(as_text=True)


# -- signed out -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/days/2026-11-24", "/stats?from=2026-01-01", "/no-such-page"])
def test_a_page_sends_a_signed_out_visitor_to_sign_in_remembering_the_page(client, path):
    assert sent_to_sign_in(client.get(path), path)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/static/kyb.css", "/static/vendor/htmx.min.js"])
def test_probes_and_static_files_need_no_sign_in(client, path):
    assert_that(client.get(path).status_code, equal_to(200))


def test_sign_in_starts_the_code_flow_with_pkce_state_and_nonce(client, keycloak):
    response = client.get("/auth/login")

    assert_that(response.status_code, equal_to(302))
    location = response.headers["Location"]
    assert_that(location, starts_with(keycloak.authorization_url + "?"))
    query = parse_qs(urlsplit(location).query)
    assert_that(query, has_entries(response_type=["code"], client_id=["kyb-frontend"],
                                   redirect_uri=["http://localhost/auth/callback"], code_challenge_method=["S256"]))
    assert "openid" in query["scope"][0].split()
    for name in ("state", "nonce", "code_challenge"):
        assert_that(query[name][0], has_length(greater_than(19)))


def test_a_form_sent_without_a_session_goes_to_sign_in_not_to_a_csrf_refusal(client):
    response = client.post("/days/2026-11-24/tasks", data={"text": "x", "next": "/days/2026-11-24"})

    assert sent_to_sign_in(response, "/days/2026-11-24", status=303)


def test_htmx_is_told_to_load_the_sign_in_page_instead_of_swapping_it_in(client):
    response = client.post("/days/2026-11-24/tasks", data={"text": "x", "next": "/days/2026-11-24"},
                           headers={"HX-Request": "true"})

    assert_that(response.status_code, equal_to(401))
    target = urlsplit(response.headers["HX-Redirect"])
    assert_that((target.path, parse_qs(target.query)), equal_to(("/auth/login", {"next": ["/days/2026-11-24"]})))
    assert_that(response.get_data(as_text=True), equal_to(""))


def test_forms_may_lead_on_to_keycloak_and_to_no_other_site(client, keycloak):
    # Browsers hold the redirects after a form's POST to form-action too: sign-out ends at Keycloak.
    policy = client.get("/healthz").headers["Content-Security-Policy"]

    assert_that(policy, contains_string(f"form-action 'self' {keycloak.url};"))


# -- signing in -------------------------------------------------------------------------

def test_ann_signs_in_and_lands_on_the_page_she_was_going_to_with_her_name_shown(client, keycloak):
    response = sign_in(keycloak, client, "ann", "/days/2026-11-20?x=1")

    assert_that(response.status_code, equal_to(302))
    assert_that(response.headers["Location"], equal_to("/days/2026-11-20?x=1"))
    html = page_text(client, "/days/2026-11-20")
    assert_that(html, contains_string('<span class="user" title="Signed in">ann</span>'))
    assert_that(html, contains_string('action="/auth/logout"'))


@pytest.mark.parametrize("next_page", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_a_way_back_that_leaves_the_site_is_replaced_by_the_journal(client, keycloak, next_page):
    response = sign_in(keycloak, client, "ann", next_page)

    assert_that(response.headers["Location"], equal_to("/"))


def test_the_session_gets_a_new_id_at_sign_in_and_the_old_one_is_worth_nothing(client, web, keycloak, redis_server):
    location, _ = through_keycloak(keycloak, client, "ann", client.get("/auth/login"))
    before = client.get_cookie(COOKIE).value

    client.get(callback_path(location))
    after = client.get_cookie(COOKIE).value
    assert_that(after, is_not(equal_to(before)))
    assert_that(page_text(client, "/"), contains_string(">ann</span>"))
    stolen = web.test_client()
    stolen.set_cookie(COOKIE, before)
    assert_that(stolen.get("/").status_code, equal_to(302))


def test_the_cookie_carries_only_a_random_id_and_the_tokens_stay_in_redis(client, keycloak, settings):
    sign_in(keycloak, client, "ann")
    sid = client.get_cookie(COOKIE).value
    stored = redis.Redis.from_url(settings["REDIS_URL"]).get(KEY_PREFIX + sid)

    assert_that(sid, has_length(less_than(50)))
    assert "." not in sid and "eyJ" not in sid, sid
    assert_that(stored.decode(), contains_string(session_of(client)["tokens"]["access_token"]))


def test_a_callback_with_a_wrong_state_is_refused_and_signs_nobody_in(client, keycloak):
    location, _ = through_keycloak(keycloak, client, "ann", client.get("/auth/login"))
    query = parse_qs(urlsplit(location).query)

    response = client.get(f"/auth/callback?code={query['code'][0]}&state=not-the-state")
    assert_that(response.status_code, equal_to(400))
    assert_that(response.get_data(as_text=True), contains_string("Sign-in failed"))
    assert_that(session_of(client).get("tokens"), equal_to(None))
    assert_that(client.get("/").status_code, equal_to(302))


def test_a_callback_naming_another_issuer_is_refused(client, keycloak):
    location, _ = through_keycloak(keycloak, client, "ann", client.get("/auth/login"))

    query = parse_qs(urlsplit(location).query)
    assert_that(query["iss"], equal_to([keycloak.issuer]))

    response = client.get("/auth/callback?" + urlencode({**query, "iss": "http://evil.example/realms/kyb"},
                                                         doseq=True))
    assert_that(response.status_code, equal_to(400))
    assert_that(client.get("/").status_code, equal_to(302))


def test_an_id_token_without_the_nonce_of_this_sign_in_is_refused(client, keycloak):
    login = client.get("/auth/login")
    with client.session_transaction() as session:
        # Authlib keeps what the callback checks (state, nonce, PKCE verifier) under _state_*.
        key = next(name for name in session if name.startswith("_state_"))
        pending = session[key]
        pending["data"]["nonce"] = "a-nonce-of-another-sign-in"
        session[key] = pending
    location, _ = through_keycloak(keycloak, client, "ann", login)

    response = client.get(callback_path(location))
    assert_that(response.status_code, equal_to(400))
    assert_that(session_of(client).get("tokens"), equal_to(None))


def test_two_users_each_see_only_their_own_journal(web, keycloak):
    ann, bob = web.test_client(), web.test_client()
    sign_in(keycloak, ann, "ann")
    sign_in(keycloak, bob, "bob")

    for client in (ann, bob):
        client.post("/days", data={"date": "2026-10-01", "csrf_token": csrf(client)})
    ann.post("/days/2026-10-01/tasks", data={"text": "A task of Ann only", "csrf_token": csrf(ann)})
    assert_that(page_text(ann, "/days/2026-10-01"), contains_string("A task of Ann only"))
    assert_that(page_text(bob, "/days/2026-10-01"), is_not(contains_string("A task of Ann only")))
    assert_that(page_text(bob, "/days/2026-10-01"), contains_string(">bob</span>"))


# -- tokens ------------------------------------------------------------------------------

def test_an_access_token_with_time_left_is_used_as_it_is(client, keycloak):
    sign_in(keycloak, client, "ann")
    before = session_of(client)["tokens"]

    page_text(client, "/")
    assert_that(session_of(client)["tokens"], equal_to(before))


def test_an_access_token_about_to_expire_is_renewed_with_the_refresh_token(client, keycloak):
    sign_in(keycloak, client, "ann")
    tokens = session_of(client)["tokens"]
    set_in_session(client, "tokens", dict(tokens, expires_at=int(time.time()) + REFRESH_MARGIN_SECONDS - 1))

    assert_that(page_text(client, "/"), contains_string(">ann</span>"))
    renewed = session_of(client)["tokens"]
    assert_that(renewed["access_token"], is_not(equal_to(tokens["access_token"])))
    assert_that(renewed["expires_at"], greater_than(int(time.time()) + REFRESH_MARGIN_SECONDS))


def test_when_keycloak_refuses_the_refresh_the_user_signs_in_again(client, keycloak):
    sign_in(keycloak, client, "ann")
    tokens = session_of(client)["tokens"]
    # The Keycloak session ends elsewhere (an admin, another tab's sign-out): its refresh token is dead.
    ended = requests.post(keycloak.logout_url, timeout=30, data={
        "client_id": keycloak.frontend_client_id, "client_secret": keycloak.frontend_client_secret,
        "refresh_token": tokens["refresh_token"]})
    assert_that(ended.status_code, equal_to(204))
    set_in_session(client, "tokens", dict(tokens, expires_at=int(time.time())))

    assert sent_to_sign_in(client.get("/days/2026-11-24"), "/days/2026-11-24")


# -- signing out -------------------------------------------------------------------------

def test_sign_out_ends_the_session_here_and_at_keycloak(client, keycloak):
    login = client.get("/auth/login")
    location, at_keycloak = through_keycloak(keycloak, client, "ann", login)
    client.get(callback_path(location))
    tokens = session_of(client)["tokens"]

    response = client.post("/auth/logout", data={"csrf_token": csrf(client)})
    assert_that(response.status_code, equal_to(303))
    end_session = response.headers["Location"]
    assert_that(end_session, starts_with(keycloak.logout_url + "?"))
    assert_that(parse_qs(urlsplit(end_session).query), equal_to({
        "id_token_hint": [tokens["id_token"]], "post_logout_redirect_uri": ["http://localhost/"],
        "client_id": ["kyb-frontend"]}))
    assert_that(client.get("/").status_code, equal_to(302))
    # The browser follows the redirect to Keycloak, which ends its session and sends it home.
    home = at_keycloak.get(end_session, allow_redirects=False, timeout=30)
    assert_that((home.status_code, home.headers.get("Location")), equal_to((302, "http://localhost/")))
    refresh = requests.post(keycloak.token_url, timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": keycloak.frontend_client_id, "client_secret": keycloak.frontend_client_secret})
    assert_that(refresh.status_code, equal_to(400))


def test_sign_out_without_the_csrf_token_is_refused_and_keeps_the_user_signed_in(client, keycloak):
    sign_in(keycloak, client, "ann")

    assert_that(client.post("/auth/logout").status_code, equal_to(403))
    assert_that(page_text(client, "/"), contains_string(">ann</span>"))


# -- when a part is missing ----------------------------------------------------------------

def test_with_the_session_store_down_sign_in_is_a_clear_503_page(settings):
    nowhere = f"redis://127.0.0.1:{servers.free_port()}/1"
    client = create_app(dict(settings, REDIS_URL=nowhere, PROPAGATE_EXCEPTIONS=False)).test_client()

    starting = client.get("/auth/login")  # no session yet: it fails when it is saved
    client.set_cookie(COOKIE, "an-id-from-before-redis-went-away")
    visiting = client.get("/")  # it fails when it is read
    for response in (starting, visiting):
        html = response.get_data(as_text=True)
        assert_that(response.status_code, equal_to(503))
        assert_that(html, contains_string("the session store is out of reach"))
        assert_that(html, is_not(contains_string("Traceback")))


def test_with_keycloak_out_of_reach_sign_in_is_a_clear_503_page(settings):
    nowhere = f"http://127.0.0.1:{servers.free_port()}/realms/kyb"
    client = create_app(dict(settings, OIDC_ISSUER=nowhere)).test_client()

    response = client.get("/auth/login")
    assert_that(response.status_code, equal_to(503))
    assert_that(response.get_data(as_text=True), contains_string("The sign-in service cannot be reached"))
