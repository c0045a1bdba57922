"""Who is using the frontend.

Until sign-in exists nobody is named and the backend answers for its default
user; the Keycloak issue makes `current_user()` return the signed-in user.
"""


def current_user():
    """The user id to send to the backend, or None for the backend's default user."""
    return None
