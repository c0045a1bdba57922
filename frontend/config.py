"""Settings of the frontend: the only place that reads the environment.

Every variable the frontend understands is listed in SETTINGS with its default.
The Kubernetes manifests set exactly these names (a test checks both ways).
"""
import os

# name -> (default, parser)
SETTINGS = {
    "BACKEND_URL": ("http://127.0.0.1:8000", str),
    "BACKEND_TIMEOUT_MS": ("5000", int),
    "SECRET_KEY": ("dev-only-change-me", str),
    "SESSION_COOKIE_SECURE": ("false", lambda v: v.lower() in ("1", "true", "yes")),
    "LOG_LEVEL": ("INFO", str),
}

ENV_VARS = tuple(SETTINGS)


def load(environ=None):
    """Read every setting from `environ` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    return {name: parse(environ.get(name, default)) for name, (default, parse) in SETTINGS.items()}
