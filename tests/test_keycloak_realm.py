"""Realm kyb, as config/keycloak/kyb-realm.json makes it, on a real Keycloak (tests/keycloak.py):
discovery and health, tokens for the demo users verified against the realm's JWKS with the
claims the apps rely on, refusals, and the frontend client's code flow with PKCE, as far as
`requests` can walk it (the browser test does the rest).
"""
import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from hamcrest import (all_of, assert_that, contains_inanyorder, contains_string, equal_to, greater_than, has_entries,
                      has_item, is_not, less_than_or_equal_to, starts_with)

ROLES = {"ann": ["user"], "bob": ["user", "admin"]}
NAMES = {"ann": ("Ann", "Andersen"), "bob": ("Bob", "Berg")}
CALLBACK_PATH = "/auth/callback"


@pytest.fixture(scope="module")
def jwks(keycloak):
    return jwt.PyJWKClient(keycloak.jwks_url, cache_keys=True)


def verified(keycloak, jwks, token, audience=None):
    """The claims of a token whose signature, issuer, audience and expiry check out."""
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], issuer=keycloak.issuer,
                      audience=audience or keycloak.audience, leeway=5)


def audiences(claims):
    return [claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"]


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_request(keycloak, redirect_uri, **params):
    """An authorization request of the frontend client, not following redirects."""
    query = {"client_id": keycloak.frontend_client_id, "response_type": "code", "scope": "openid",
             "redirect_uri": redirect_uri, "state": secrets.token_urlsafe(16), **params}
    session = requests.Session()
    return session, session.get(f"{keycloak.authorization_url}?{urlencode(query)}", allow_redirects=False,
                                timeout=30)


def like_a_browser(session):
    """Keycloak marks its cookies Secure on loopback, which browsers treat as a secure
    context (and so send them over http://127.0.0.1); requests does not, unless told."""
    for cookie in session.cookies:
        cookie.secure = False


def sign_in(keycloak, session, login_page, username):
    """Fill in Keycloak's login form as a browser would; answers the redirect back to the app."""
    like_a_browser(session)
    match = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', login_page.text)
    assert match, f"no login form in Keycloak's page:\n{login_page.text[:2000]}"
    return session.post(html.unescape(match[1]), data={"username": username, "password": keycloak.users[username],
                                                       "credentialId": ""}, allow_redirects=False, timeout=30)


def loopback_callback():
    # Any port: the realm registers loopback redirect URIs without one (RFC 8252, 7.3).
    return f"http://127.0.0.1:{49152 + secrets.randbelow(16000)}{CALLBACK_PATH}"


# -- the server --------------------------------------------------------------------

def test_discovery_names_the_realm_as_issuer_and_offers_pkce_s256(keycloak):
    document = keycloak.discovery()

    assert_that(document, has_entries(issuer=keycloak.issuer, jwks_uri=keycloak.jwks_url,
                                      token_endpoint=keycloak.token_url,
                                      authorization_endpoint=keycloak.authorization_url,
                                      end_session_endpoint=keycloak.logout_url))
    assert_that(document["code_challenge_methods_supported"], has_item("S256"))
    assert_that(document["id_token_signing_alg_values_supported"], has_item("RS256"))


def test_the_issuer_is_the_same_whichever_loopback_name_reaches_keycloak(keycloak):
    port = urlsplit(keycloak.url).port
    document = requests.get(f"http://localhost:{port}/realms/kyb/.well-known/openid-configuration", timeout=10).json()
    token = requests.post(f"http://localhost:{port}/realms/kyb/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "password", "client_id": "kyb-cli", "username": "ann", "password": "ann-password"}).json()

    assert_that(document["issuer"], equal_to(keycloak.issuer))
    assert_that(jwt.decode(token["access_token"], options={"verify_signature": False})["iss"],
                equal_to(keycloak.issuer))


def test_health_answers_on_the_management_port_only(keycloak):
    ready = requests.get(f"{keycloak.management_url}/health/ready", timeout=10)
    live = requests.get(f"{keycloak.management_url}/health/live", timeout=10)

    assert_that(ready.status_code, equal_to(200))
    assert_that(ready.json(), has_entries(status="UP"))
    assert_that(live.status_code, equal_to(200))
    assert_that(requests.get(f"{keycloak.url}/health/ready", timeout=10).status_code, equal_to(404))


def test_it_listens_on_loopback_only(keycloak):
    assert_that(urlsplit(keycloak.url).hostname, equal_to("127.0.0.1"))
    assert_that(urlsplit(keycloak.management_url).hostname, equal_to("127.0.0.1"))


# -- tokens for the demo users ----------------------------------------------------------

@pytest.mark.parametrize("username", ["ann", "bob"])
def test_a_demo_user_gets_a_token_for_the_backend_from_the_cli_client(keycloak, jwks, username):
    response = keycloak.token(username)
    claims = verified(keycloak, jwks, response["access_token"])
    first, last = NAMES[username]

    assert_that(response, has_entries(token_type="Bearer", expires_in=all_of(greater_than(290), less_than_or_equal_to(300))))
    assert_that(response, has_entries(refresh_token=is_not(None), id_token=is_not(None)))
    assert_that(audiences(claims), has_item("kyb-backend"))
    assert_that(claims, has_entries(iss=keycloak.issuer, azp="kyb-cli", preferred_username=username,
                                    email=f"{username}@kyb.example", email_verified=True,
                                    name=f"{first} {last}", given_name=first, family_name=last))
    assert_that(claims["realm_access"]["roles"], contains_inanyorder(*ROLES[username]))
    assert_that(claims["exp"] - claims["iat"], equal_to(300))
    assert re.fullmatch(r"[0-9a-f-]{36}", claims["sub"]), claims["sub"]


def test_the_two_users_have_different_subjects(keycloak, jwks):
    ann = verified(keycloak, jwks, keycloak.token("ann")["access_token"])
    bob = verified(keycloak, jwks, keycloak.token("bob")["access_token"])

    assert_that(ann["sub"], is_not(equal_to(bob["sub"])))
    assert_that(ann["realm_access"]["roles"], is_not(has_item("admin")))
    assert_that(bob["realm_access"]["roles"], has_item("admin"))


def test_tokens_are_signed_with_rs256_and_a_kid_from_the_jwks(keycloak):
    token = keycloak.token("ann")["access_token"]
    header = jwt.get_unverified_header(token)
    keys = requests.get(keycloak.jwks_url, timeout=10).json()["keys"]

    assert_that(header, has_entries(alg="RS256", typ="JWT"))
    assert_that([key["kid"] for key in keys if key.get("use") == "sig"], has_item(header["kid"]))


def test_a_refresh_token_gives_a_new_valid_access_token(keycloak, jwks):
    first = keycloak.token("ann")
    second = keycloak.refresh(first["refresh_token"])

    assert_that(second["access_token"], is_not(equal_to(first["access_token"])))
    assert_that(verified(keycloak, jwks, second["access_token"]), has_entries(preferred_username="ann"))


def test_a_token_for_the_backend_is_not_accepted_for_another_audience(keycloak, jwks):
    token = keycloak.token("ann")["access_token"]

    with pytest.raises(jwt.InvalidAudienceError):
        verified(keycloak, jwks, token, audience="some-other-api")


# -- refusals --------------------------------------------------------------------

@pytest.mark.parametrize("username, password", [("ann", "wrong-password"), ("ann", "bob-password"),
                                                ("nobody", "ann-password")])
def test_a_wrong_password_or_unknown_user_gets_400_invalid_grant(keycloak, username, password):
    # 400, not 401: RFC 6749 section 5.2 (401 is for a client that fails to authenticate).
    response = keycloak.token_response(username, password)

    assert_that(response.status_code, equal_to(400))
    assert_that(response.json(), has_entries(error="invalid_grant"))


def test_the_frontend_client_may_not_use_the_password_grant(keycloak):
    response = keycloak.token_response("ann", "ann-password", client_id=keycloak.frontend_client_id,
                                       client_secret=keycloak.frontend_client_secret)

    assert_that(response.status_code, equal_to(400))
    assert_that(response.json(), has_entries(error="unauthorized_client"))


def test_the_frontend_client_needs_its_secret(keycloak):
    response = requests.post(keycloak.token_url, timeout=30, data={
        "grant_type": "authorization_code", "client_id": keycloak.frontend_client_id,
        "client_secret": "not-the-secret", "code": "x", "redirect_uri": loopback_callback()})

    assert_that(response.status_code, equal_to(401))
    assert_that(response.json(), has_entries(error="unauthorized_client"))


# -- the frontend client: authorization code with PKCE --------------------------------

def test_an_authorization_request_without_a_code_challenge_is_sent_back_with_an_error(keycloak):
    callback = loopback_callback()
    _, response = authorization_request(keycloak, callback)

    assert_that(response.status_code, equal_to(302))
    location = response.headers["Location"]
    assert_that(location, starts_with(callback + "?"))
    assert_that(parse_qs(urlsplit(location).query), has_entries(
        error=["invalid_request"], error_description=["Missing parameter: code_challenge_method"]))


def test_an_authorization_request_with_a_plain_code_challenge_is_refused(keycloak):
    callback = loopback_callback()
    _, response = authorization_request(keycloak, callback, code_challenge="a" * 43, code_challenge_method="plain")

    assert_that(response.status_code, equal_to(302))
    assert_that(parse_qs(urlsplit(response.headers["Location"]).query), has_entries(error=["invalid_request"]))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_authorization_request_with_s256_shows_the_login_page(keycloak, host):
    _, challenge = pkce_pair()
    callback = f"http://{host}:{49152 + secrets.randbelow(16000)}{CALLBACK_PATH}"
    _, response = authorization_request(keycloak, callback, code_challenge=challenge, code_challenge_method="S256")

    assert_that(response.status_code, equal_to(200))
    assert_that(response.text, contains_string('id="kc-form-login"'))


@pytest.mark.parametrize("redirect_uri", ["http://evil.example/auth/callback", "http://127.0.0.1:8000/elsewhere"])
def test_a_redirect_uri_the_realm_does_not_list_is_refused_without_a_redirect(keycloak, redirect_uri):
    _, challenge = pkce_pair()
    _, response = authorization_request(keycloak, redirect_uri, code_challenge=challenge,
                                        code_challenge_method="S256")

    assert_that(response.status_code, equal_to(400))
    assert_that(response.text, contains_string("Invalid parameter: redirect_uri"))


def test_the_code_flow_with_pkce_signs_a_user_in_and_logout_ends_the_session(keycloak, jwks):
    verifier, challenge = pkce_pair()
    callback, nonce = loopback_callback(), secrets.token_urlsafe(16)
    session, login_page = authorization_request(keycloak, callback, code_challenge=challenge,
                                                code_challenge_method="S256", nonce=nonce)
    assert_that(login_page.status_code, equal_to(200))

    back = sign_in(keycloak, session, login_page, "bob")
    assert_that(back.status_code, equal_to(302))
    assert_that(back.headers["Location"], starts_with(callback + "?"))
    params = parse_qs(urlsplit(back.headers["Location"]).query)
    assert_that(params, has_entries(iss=[keycloak.issuer]))
    exchange = {"grant_type": "authorization_code", "code": params["code"][0], "redirect_uri": callback,
                "client_id": keycloak.frontend_client_id, "client_secret": keycloak.frontend_client_secret}

    # The code is bound to the challenge: no verifier (or a wrong one), no tokens...
    refused = requests.post(keycloak.token_url, data={**exchange, "code_verifier": pkce_pair()[0]}, timeout=30)
    assert_that(refused.status_code, equal_to(400))
    assert_that(refused.json(), has_entries(error="invalid_grant"))

    # ... and the code is spent: sign in again for a fresh one, and exchange it with the verifier.
    session, login_page = authorization_request(keycloak, callback, code_challenge=challenge,
                                                code_challenge_method="S256", nonce=nonce)
    back = sign_in(keycloak, session, login_page, "bob")
    exchange["code"] = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    tokens = requests.post(keycloak.token_url, data={**exchange, "code_verifier": verifier}, timeout=30)
    assert_that(tokens.status_code, equal_to(200))
    tokens = tokens.json()
    again = requests.post(keycloak.token_url, data={**exchange, "code_verifier": verifier}, timeout=30)
    assert_that(again.status_code, equal_to(400))  # a code is good once
    access = verified(keycloak, jwks, tokens["access_token"])
    identity = verified(keycloak, jwks, tokens["id_token"], audience=keycloak.frontend_client_id)
    assert_that(access, has_entries(azp="kyb-frontend", preferred_username="bob", name="Bob Berg"))
    assert_that(access["realm_access"]["roles"], has_item("admin"))
    assert_that(identity, has_entries(nonce=nonce, preferred_username="bob", email="bob@kyb.example"))
    assert_that(audiences(identity), is_not(has_item("kyb-backend")))

    # Logout with the ID token as hint goes straight back to the app, and the session is over.
    home = callback.removesuffix(CALLBACK_PATH) + "/"
    like_a_browser(session)
    logout = session.get(keycloak.logout_url, allow_redirects=False, timeout=30, params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": home, "client_id": keycloak.frontend_client_id})
    assert_that(logout.status_code, equal_to(302))
    assert_that(logout.headers["Location"], equal_to(home))
    refresh = requests.post(keycloak.token_url, timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": keycloak.frontend_client_id, "client_secret": keycloak.frontend_client_secret})
    assert_that(refresh.status_code, equal_to(400))
    assert_that(refresh.json(), has_entries(error="invalid_grant"))


def test_the_cli_client_has_no_browser_flow(keycloak):
    _, challenge = pkce_pair()
    response = requests.get(keycloak.authorization_url, allow_redirects=False, timeout=30, params={
        "client_id": keycloak.cli_client_id, "response_type": "code", "scope": "openid",
        "redirect_uri": loopback_callback(), "code_challenge": challenge, "code_challenge_method": "S256"})

    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        assert_that(response.headers["Location"], contains_string("error=unauthorized_client"))
