"""Who is calling. Until sign-in exists the user id comes from a header.

`current_user()` is the one function the rest of the backend asks; the Keycloak
issue replaces its body with the verified token's subject.
"""
import re

from flask import current_app, request

from .errors import Problem

USER_HEADER = "X-User-Id"
USER_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def current_user():
    user = request.headers.get(USER_HEADER, current_app.config["DEFAULT_USER"])
    if not USER_ID.fullmatch(user):
        raise Problem(400, "invalid_user", f"{USER_HEADER} must be 1-64 letters, digits or . _ @ -.")
    return user
