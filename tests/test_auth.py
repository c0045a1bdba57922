"""Sign-in at the backend, against the real Keycloak: only verified tokens get in, and each
user sees only their own journal (OWASP API1)."""
import base64
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hamcrest import assert_that, contains_string, equal_to, has_entries, has_key, is_not

from backend.openapi import spec


@pytest.fixture
def app_config(keycloak):
    return {"OIDC_ISSUER": keycloak.issuer, "AUTH_DEV_USER_HEADER": False}


@pytest.fixture(scope="module")
def tokens(keycloak):
    return {user: keycloak.token(user)["access_token"] for user in ("ann", "bob")}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_call_without_a_token_is_401_with_a_bearer_challenge(client):
    response = client.get("/api/v1/days")
    assert_that(response.status_code, equal_to(401))
    assert_that(response.mimetype, equal_to("application/problem+json"))
    assert_that(response.headers["WWW-Authenticate"], contains_string("Bearer"))


def test_the_user_header_alone_is_not_trusted(client):
    assert_that(client.get("/api/v1/days", headers={"X-User-Id": "ann"}).status_code, equal_to(401))


def test_a_keycloak_token_signs_the_user_in_as_its_subject(client, tokens):
    created = client.post("/api/v1/days", json={"date": "2026-03-02"}, headers=bearer(tokens["ann"]))
    assert_that(created.status_code, equal_to(201))
    listed = client.get("/api/v1/days", headers=bearer(tokens["ann"])).get_json()
    assert_that([d["date"] for d in listed["items"]], equal_to(["2026-03-02"]))


def test_a_first_sign_in_makes_the_users_journal(app, client, tokens):
    from backend.db import get_db

    client.get("/api/v1/days", headers=bearer(tokens["bob"]))
    sub = jwt.decode(tokens["bob"], options={"verify_signature": False})["sub"]
    with app.app_context():
        assert_that(get_db().users.count_documents({"user_id": sub}), equal_to(1))


def test_only_admins_see_the_flags_diagnostics(client, tokens):
    ann = client.get("/api/v1/flags", headers=bearer(tokens["ann"])).get_json()
    bob = client.get("/api/v1/flags", headers=bearer(tokens["bob"])).get_json()
    assert_that(ann, is_not(has_key("version")))
    assert_that(bob, has_entries(version=is_not(None)))


def fill(path, ids):
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_no_route_lets_one_user_reach_anothers_journal(app, client, tokens):
    """Walk every operation of the spec with ann's token and bob's ids: all 404 or empty."""
    bob, ann = bearer(tokens["bob"]), bearer(tokens["ann"])
    client.post("/api/v1/days", json={"date": "2026-04-01"}, headers=bob)
    task = client.post("/api/v1/days/2026-04-01/tasks", json={"text": "bob's secret"}, headers=bob).get_json()
    note = client.post("/api/v1/notes", json={"text": "bob's note", "date": "2026-04-01"}, headers=bob).get_json()
    client.post("/api/v1/backlog", json={"text": "bob's backlog"}, headers=bob)
    before = client.get("/api/v1/export", headers=bob).data
    ids = {"date": "2026-04-01", "task_id": task["id"], "note_id": note["id"]}
    bodies = {"post": {"text": "x", "date": "2026-04-01", "to": "2026-04-02"}, "patch": {"text": "x", "done": True}}
    walked = 0
    for path, item in spec(app)["paths"].items():
        if not path.startswith("/api/v1/") or path.endswith("openapi.json"):
            continue
        for method in item:
            url = fill(path, ids)
            kwargs = {"headers": ann}
            if method in bodies and "import" not in path:
                kwargs["json"] = {k: v for k, v in bodies[method].items()
                                  if k in json.dumps(item[method].get("requestBody", {}))} or bodies[method]
            response = client.open(url, method=method.upper(), **kwargs)
            walked += 1
            text = response.get_data(as_text=True)
            assert "bob's" not in text, (method, url, text)
            if "{" in path:
                assert response.status_code in (400, 404), (method, url, response.status_code, text)
    assert_that(client.get("/api/v1/export", headers=bob).data, equal_to(before))
    assert walked > 15


@pytest.fixture(scope="module")
def realm_key(keycloak):
    """An RSA key we hold, added to realm kyb as a key provider: Keycloak's own JWKS then
    publishes it, so we can sign tokens with any claims that the real JWKS vouches for."""
    admin = requests.post(f"{keycloak.url}/realms/master/protocol/openid-connect/token", data={
        "grant_type": "password", "client_id": "admin-cli", "username": keycloak.admin_username,
        "password": keycloak.admin_password}, timeout=30).json()["access_token"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    realm = requests.get(f"{keycloak.url}/admin/realms/kyb", headers=bearer(admin), timeout=30).json()
    component = {"name": f"test-key-{uuid.uuid4().hex[:8]}", "providerId": "rsa",
                 "providerType": "org.keycloak.keys.KeyProvider", "parentId": realm["id"],
                 "config": {"privateKey": [pem], "priority": ["1"], "enabled": ["true"], "active": ["true"],
                            "algorithm": ["RS256"]}}
    created = requests.post(f"{keycloak.url}/admin/realms/kyb/components", json=component, headers=bearer(admin),
                            timeout=30)
    assert created.status_code == 201, created.text
    public = key.public_key().public_numbers()
    for jwk in requests.get(keycloak.jwks_url, timeout=30).json()["keys"]:
        if jwk.get("n") == base64.urlsafe_b64encode(public.n.to_bytes(256, "big")).rstrip(b"=").decode():
            return key, jwk["kid"]
    raise AssertionError("the added key is not in the realm's JWKS")


def forge(key, kid, keycloak, **changes):
    now = int(time.time())
    claims = {"iss": keycloak.issuer, "aud": "kyb-backend", "sub": "forged-user", "iat": now, "exp": now + 300,
              "realm_access": {"roles": ["user"]}}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_a_well_formed_token_signed_by_a_realm_key_is_accepted(client, keycloak, realm_key):
    key, kid = realm_key
    assert_that(client.get("/api/v1/days", headers=bearer(forge(key, kid, keycloak))).status_code, equal_to(200))


@pytest.mark.parametrize("case", ["expired", "not yet valid", "wrong audience", "wrong issuer", "no expiry"])
def test_a_token_with_bad_claims_is_401(client, keycloak, realm_key, case):
    key, kid = realm_key
    now = int(time.time())
    changes = {"expired": {"exp": now - 120, "iat": now - 600}, "not yet valid": {"nbf": now + 600},
               "wrong audience": {"aud": "someone-else"}, "wrong issuer": {"iss": "https://evil.example/realms/kyb"},
               "no expiry": {"exp": None}}[case]
    response = client.get("/api/v1/days", headers=bearer(forge(key, kid, keycloak, **changes)))
    assert_that(response.status_code, equal_to(401))
    assert_that(response.mimetype, equal_to("application/problem+json"))


def test_a_tampered_token_is_401(client, tokens):
    header, payload, signature = tokens["ann"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_that(client.get("/api/v1/days", headers=bearer(f"{header}.{forged}.{signature}")).status_code,
                equal_to(401))


def test_an_unsigned_alg_none_token_is_401(client, tokens):
    claims = jwt.decode(tokens["ann"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": jwt.get_unverified_header(tokens["ann"])["kid"]})
    assert_that(client.get("/api/v1/days", headers=bearer(unsigned)).status_code, equal_to(401))


def test_an_hs256_token_keyed_with_the_public_key_is_401(client, keycloak, tokens):
    kid = jwt.get_unverified_header(tokens["ann"])["kid"]
    jwk = next(k for k in requests.get(keycloak.jwks_url, timeout=30).json()["keys"] if k["kid"] == kid)
    public_pem = jwt.PyJWK(jwk).key.public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(tokens["ann"], options={"verify_signature": False})
    # PyJWT refuses to HMAC with a PEM key, as it should; build the token by hand.
    import hashlib
    import hmac

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    assert_that(client.get("/api/v1/days", headers=bearer(f"{signing_input}.{signature}")).status_code,
                equal_to(401))


def test_a_token_with_an_unknown_key_id_is_401(client, keycloak):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = forge(stranger, "no-such-kid", keycloak)
    assert_that(client.get("/api/v1/days", headers=bearer(token)).status_code, equal_to(401))


def test_a_token_signed_by_a_stranger_under_a_realm_kid_is_401(client, keycloak, tokens):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = forge(stranger, jwt.get_unverified_header(tokens["ann"])["kid"], keycloak)
    assert_that(client.get("/api/v1/days", headers=bearer(token)).status_code, equal_to(401))
