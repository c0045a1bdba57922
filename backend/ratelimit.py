"""Per-user rate limits with flask-limiter, counted in Redis so every worker and pod shares them.

When Redis is unreachable, flask-limiter falls back to counting in each worker's memory
(`in_memory_fallback_enabled`): limits stay in force, only per worker instead of
shared, until Redis answers again. The probes are never limited.
"""
from flask import request
from flask_limiter import Limiter

from .errors import Problem
from .identity import current_user


def _caller():
    """The signed-in user; a caller who cannot be identified is counted by address."""
    try:
        return "user:" + current_user()
    except Problem:
        return "addr:" + (request.remote_addr or "unknown")


def init_app(app):
    timeout = app.config["REDIS_TIMEOUT_MS"] / 1000
    limiter = Limiter(
        _caller, app=app, default_limits=[app.config["RATE_LIMIT"]],
        storage_uri=app.config["REDIS_URL"] or "memory://",
        storage_options={"socket_timeout": timeout, "socket_connect_timeout": timeout} if app.config["REDIS_URL"] else {},
        headers_enabled=True, in_memory_fallback_enabled=True, swallow_errors=True, key_prefix="kyb-limit",
        default_limits_exempt_when=lambda: request.blueprint == "health",
    )
    app.extensions["kyb.limiter"] = limiter
