"""Per-user rate limits with flask-limiter, counted in Redis so every worker and pod shares them.

When Redis is unreachable, flask-limiter falls back to counting in each worker's memory
(`in_memory_fallback_enabled`): limits stay in force, only per worker instead of
shared, until Redis answers again. The probes and /metrics are never limited.

A request costs one Redis round trip for its limit (the count). Only a refusal says
when to try again (Retry-After): flask-limiter's X-RateLimit-* headers on every answer
would read the window back, two more round trips per request, the backend's biggest cost
under load (measured by `make bench`). RATE_LIMIT=off counts nothing and costs nothing:
for a deployment whose gateway limits callers already, and to measure what the limit costs.
"""
import time

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
    enabled = app.config["RATE_LIMIT"].strip().lower() != "off"
    app.config["RATELIMIT_ENABLED"] = enabled  # flask-limiter's own switch, decided by RATE_LIMIT only
    limiter = Limiter(
        _caller, app=app, default_limits=[app.config["RATE_LIMIT"]] if enabled else [],
        storage_uri=app.config["REDIS_URL"] or "memory://",
        storage_options={"socket_timeout": timeout, "socket_connect_timeout": timeout} if app.config["REDIS_URL"] else {},
        headers_enabled=False, in_memory_fallback_enabled=True, swallow_errors=True, key_prefix="kyb-limit",
        default_limits_exempt_when=lambda: request.blueprint in ("health", "metrics"),
    )
    app.extensions["kyb.limiter"] = limiter

    @app.after_request
    def _retry_after(response):
        """On a refusal, the seconds until the user's window starts again."""
        limit = limiter.current_limit if response.status_code == 429 else None
        if limit is not None:
            try:
                seconds = limit.reset_at - int(time.time())
            except Exception:  # noqa: BLE001 - the storage failed just now: a whole window is a safe answer
                seconds = limit.limit.get_expiry()
            response.headers["Retry-After"] = str(max(1, seconds))
        return response
