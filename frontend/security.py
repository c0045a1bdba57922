"""CSRF protection for every form and the security headers of every response.

Each session holds one random token; every form carries it in a hidden field
and every request that changes something must send it back (a small
equivalent of Flask-WTF's CSRFProtect, without forms classes we do not need).
"""
import hmac
import secrets
from urllib.parse import urlsplit

from flask import abort, request, session

CSRF_FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def content_security_policy(sign_in_url):
    """No inline script or style anywhere: htmx is told not to inject its indicator styles
    (meta htmx-config), and charts are SVG styled from the stylesheet. Forms post here only,
    but browsers apply form-action to the redirects that follow too: sign-out, and a form
    sent after the session ended, go on to the sign-in service at `sign_in_url`."""
    sign_in = urlsplit(sign_in_url)
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'" + (f" {sign_in.scheme}://{sign_in.netloc}" if sign_in.netloc else ""),
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ])


def csrf_token():
    """The session's CSRF token, made on first use."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def init_app(app):
    app.jinja_env.globals["csrf_token"] = csrf_token
    csp = content_security_policy(app.config["OIDC_ISSUER"])

    @app.before_request
    def _check_csrf():
        if request.method in SAFE_METHODS:
            return
        expected, sent = session.get(CSRF_FIELD), request.form.get(CSRF_FIELD, "")
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            abort(403, "This form has expired. Go back, reload the page and try again.")

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers["Content-Security-Policy"] = csp
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if app.config["SESSION_COOKIE_SECURE"]:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if request.endpoint != "static":
            # Pages hold the journal and a CSRF token: keep them out of shared caches.
            headers["Cache-Control"] = "no-store"
        return response


def safe_next(path, default="/"):
    """`path` if it is a path on this site (so a form cannot redirect elsewhere), else default."""
    # Browsers drop tabs and newlines from URLs and read a backslash as a slash,
    # so "/\t/evil.example" would leave the site: allow no such characters at all.
    if (not path or not path.startswith("/") or path.startswith("//") or "\\" in path
            or any(c.isspace() or not c.isprintable() for c in path)):
        return default
    return path
