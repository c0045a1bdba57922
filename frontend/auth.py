"""Sign-in with Keycloak (OpenID Connect through Authlib): every page needs a signed-in user.

/auth/login sends the browser to Keycloak: authorization code flow with PKCE (S256),
state and nonce kept in the server-side session. /auth/callback checks the state, the
answer's `iss` and the ID token (signature, issuer, audience, nonce, expiry), gives the
session a new id and keeps the tokens in it. /auth/logout (a form POST, so CSRF-checked)
ends the session here and at Keycloak (RP-initiated logout). The access token is renewed
with the refresh token shortly before it expires; if Keycloak refuses, the user signs in
again. Probes, static files and the sign-in itself need no user.

The backend is told who asks by `Authorization: Bearer <access token>`. With
AUTH_DEV_USER (development and tests only) every visitor is that user, named to the
backend by X-User-Id, and Keycloak is never asked.
"""
import logging
import time
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, current_app, g, has_request_context, redirect, request, session, url_for
from joserfc.errors import JoseError

from .security import safe_next
from .sessions import SessionStoreUnavailable

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__, url_prefix="/auth")
USER_HEADER = "X-User-Id"
# Renew the access token when it has less than this left (the backend allows 30 s of skew).
REFRESH_MARGIN_SECONDS = 60
KEYCLOAK_TIMEOUT_SECONDS = 10
# metrics.metrics: Prometheus scrapes without signing in (only on METRICS_PORT, which no Service exposes).
PUBLIC_ENDPOINTS = {"static", "health.healthz", "health.readyz", "metrics.metrics", "auth.login", "auth.callback",
                    "auth.logout"}


class SignInUnavailable(Exception):
    """Keycloak cannot be reached, or sign-in is not configured."""


class SignInFailed(Exception):
    """Keycloak's answer was an error, or could not be trusted: nobody is signed in."""


def oidc():
    """The app's OpenID Connect client (Authlib)."""
    return current_app.extensions["kyb.oidc"]


def dev_user():
    return current_app.config["AUTH_DEV_USER"]


def backend_headers():
    """The headers that tell the backend who asks: the access token (development: the user's name)."""
    if not has_request_context():
        return {}
    if dev_user():
        return {USER_HEADER: dev_user()}
    tokens = session.get("tokens")
    return {"Authorization": f"Bearer {tokens['access_token']}"} if tokens else {}


def _kept(answer, previous=None):
    """What the session keeps of a token response (a refresh may leave out what stays the same)."""
    previous = previous or {}
    return {"access_token": answer["access_token"],
            "refresh_token": answer.get("refresh_token", previous.get("refresh_token")),
            "id_token": answer.get("id_token", previous.get("id_token")),
            "expires_at": int(time.time()) + int(answer.get("expires_in", 0))}


def _fresh(tokens):
    """True if the access token is good for a while yet, or was renewed; False if Keycloak refused."""
    if tokens["expires_at"] - time.time() > REFRESH_MARGIN_SECONDS:
        return True
    if not tokens.get("refresh_token"):
        return False
    try:
        answer = oidc().fetch_access_token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    except OAuthError as exc:  # the refresh token expired, or the Keycloak session ended
        log.info("token refresh refused: %s", exc.error)
        return False
    except requests.RequestException as exc:
        raise SignInUnavailable(f"refresh: {exc.__class__.__name__}") from None
    session["tokens"] = _kept(answer, tokens)
    return True


def _to_sign_in():
    """Off to sign in, then back where the user was going; htmx is told to load the whole page."""
    here = request.full_path.rstrip("?") if request.method in ("GET", "HEAD") else request.form.get("next")
    target = url_for("auth.login", next=safe_next(here))
    if request.headers.get("HX-Request"):
        return "", 401, {"HX-Redirect": target}
    return redirect(target, 302 if request.method in ("GET", "HEAD") else 303)


def _require_sign_in():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if session.unavailable:
        raise SessionStoreUnavailable()
    if dev_user():
        g.user = {"id": dev_user(), "name": dev_user()}
        return None
    tokens = session.get("tokens")
    if not tokens or not _fresh(tokens):
        return _to_sign_in()
    g.user = session["user"]
    return None


@bp.get("/login")
def login():
    next_page = safe_next(request.args.get("next"))
    if dev_user():
        return redirect(next_page)
    if not current_app.config["OIDC_ISSUER"]:
        raise SignInUnavailable("OIDC_ISSUER is not set")
    session["next"] = next_page
    try:
        return oidc().authorize_redirect(url_for("auth.callback", _external=True))
    except requests.RequestException as exc:
        raise SignInUnavailable(f"discovery: {exc.__class__.__name__}") from None


@bp.get("/callback")
def callback():
    issuer = current_app.config["OIDC_ISSUER"]
    # RFC 9207: the answer names who sent it; another issuer's code must not be used here.
    if request.args.get("iss", issuer) != issuer:
        raise SignInFailed(f"the answer came from {request.args['iss']}")
    try:
        answer = oidc().authorize_access_token(claims_options={"iss": {"essential": True, "value": issuer}})
    except (OAuthError, JoseError) as exc:  # wrong or reused state, an error from Keycloak, a bad ID token
        raise SignInFailed(str(exc)) from None
    except requests.RequestException as exc:
        raise SignInUnavailable(f"token: {exc.__class__.__name__}") from None
    claims = answer.get("userinfo")
    if not claims:
        raise SignInFailed("no ID token")
    next_page = safe_next(session.get("next"))
    session.clear()
    session.rotate()
    session["user"] = {"id": claims["sub"], "name": claims.get("preferred_username") or claims.get("name")}
    session["tokens"] = _kept(answer)
    log.info("signed in: %s", claims["sub"])
    return redirect(next_page)


@bp.post("/logout")
def logout():
    tokens = session.get("tokens") or {}
    session.clear()
    session.rotate()
    home = url_for("pages.today_page", _external=True)
    if dev_user() or not tokens.get("id_token"):
        return redirect(home, 303)
    try:
        end_session = oidc().load_server_metadata()["end_session_endpoint"]
    except requests.RequestException as exc:
        raise SignInUnavailable(f"discovery: {exc.__class__.__name__}") from None
    query = urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": home,
                       "client_id": current_app.config["OIDC_CLIENT_ID"]})
    return redirect(f"{end_session}?{query}", 303)


def init_app(app):
    """Register the client (nothing is fetched until the first sign-in), the routes, and the
    check that runs before every other request (register before CSRF: a signed-out POST
    goes to sign-in rather than failing its CSRF check)."""
    issuer = app.config["OIDC_ISSUER"].rstrip("/")
    app.extensions["kyb.oidc"] = OAuth(app).register(
        "keycloak", client_id=app.config["OIDC_CLIENT_ID"], client_secret=app.config["OIDC_CLIENT_SECRET"],
        server_metadata_url=app.config["OIDC_DISCOVERY_URL"] or f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256",
                       "default_timeout": KEYCLOAK_TIMEOUT_SECONDS})
    app.before_request(_require_sign_in)
    app.register_blueprint(bp)
