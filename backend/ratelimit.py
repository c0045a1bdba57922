"""Per-user rate limits with flask-limiter, counted in Redis so every worker and pod shares them.

When Redis is unreachable, flask-limiter falls back to counting in each worker's memory
(`in_memory_fallback_enabled`): limits stay in force, only per worker instead of
shared, until Redis answers again. The probes are never limited.
"""
from flask import request
from flask_limiter import Limiter

from .identity import USER_HEADER


def _caller():
    # The raw header is enough to tell callers apart; views validate it.
    return request.headers.get(USER_HEADER) or request.remote_addr or "anonymous"


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
