"""Who is calling: the subject of an access token that Keycloak signed.

Every /api/v1 call carries `Authorization: Bearer <JWT>`. The token is verified
against the realm's JWKS (fetched once, fetched again for an unknown `kid`):
signature with an asymmetric algorithm only (never `none`, never HS), `iss`, `aud`,
`exp`/`nbf` with a small leeway. A verified token is remembered until it expires,
so a repeat caller costs a dictionary lookup.

AUTH_DEV_USER_HEADER=true (local development and tests only; the manifests set it
false) also accepts an `X-User-Id` header without a token.
"""
import re
import threading
import time

import jwt
from flask import current_app, g, request

from .errors import Problem

USER_HEADER = "X-User-Id"
USER_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
LEEWAY_SECONDS = 30
CACHED_TOKENS = 10_000
JWKS_TIMEOUT_SECONDS = 5
_seen = set()  # users whose journal this process has made sure of


class Unauthorized(Problem):
    def __init__(self, detail):
        super().__init__(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="kyb"'})


class TokenVerifier:
    """Verifies access tokens of one issuer and audience; remembers good ones until they expire."""

    def __init__(self, issuer, audience, jwks_url):
        self.issuer, self.audience = issuer, audience
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=JWKS_TIMEOUT_SECONDS)
        self._verified = {}
        self._lock = threading.Lock()

    def verify(self, token):
        """The token's claims; Unauthorized if it is not a valid token for us."""
        known = self._verified.get(token)
        if known is not None and known["exp"] + LEEWAY_SECONDS > time.time():
            return known
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWKClientConnectionError:
            raise Problem(503, "auth_unavailable", "The sign-in service cannot be reached to check the token.") \
                from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(f"The access token is not valid: {exc}.") from None
        with self._lock:
            if len(self._verified) >= CACHED_TOKENS:
                self._verified.clear()
            self._verified[token] = claims
        return claims


def current_user():
    """The caller's user id (the token's `sub`), verified once per request."""
    if "user" not in g:
        g.user, g.roles, g.email = _identify()
    return g.user


def current_roles():
    current_user()
    return g.roles


def current_email():
    current_user()
    return g.email


def _identify():
    header = request.headers.get("Authorization")
    config = current_app.config
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send `Authorization: Bearer <access token>`.")
        verifier = current_app.extensions.get("kyb.tokens")
        if verifier is None:
            raise Unauthorized("Sign-in is not configured on this server (OIDC_ISSUER).")
        claims = verifier.verify(token.strip())
        if claims["sub"] not in _seen:  # a first sign-in makes the user's journal
            from .journal import ensure_user

            ensure_user(claims["sub"])
            _seen.add(claims["sub"])
        roles = claims.get("realm_access", {}).get("roles", [])
        return claims["sub"], [r for r in roles if isinstance(r, str)], claims.get("email")
    if config["AUTH_DEV_USER_HEADER"]:
        user = request.headers.get(USER_HEADER, config["DEFAULT_USER"])
        if not USER_ID.fullmatch(user):
            raise Problem(400, "invalid_user", f"{USER_HEADER} must be 1-64 letters, digits or . _ @ -.")
        return user, ["user", "admin"], None  # a development setting: the local user may do everything
    raise Unauthorized("Sign in: send `Authorization: Bearer <access token>` from Keycloak.")


def init_app(app):
    issuer = app.config["OIDC_ISSUER"]
    if issuer:
        jwks_url = app.config["OIDC_JWKS_URL"] or f"{issuer}/protocol/openid-connect/certs"
        app.extensions["kyb.tokens"] = TokenVerifier(issuer, app.config["OIDC_AUDIENCE"], jwks_url)
