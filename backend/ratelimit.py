"""Per-user rate limits, counted in Redis so every worker and pod shares them, and almost
free per request.

RATE_LIMIT (a `limits` string: "600 per minute", "10/second") allows each user that many
requests per window; windows follow the clock (12:03:00-12:04:00 is one). The count is
one Redis key per user and window. A worker does not ask Redis about every request: it
*leases* slot numbers. One INCRBY of n (a script, one round trip) reserves the numbers
(count-n, count] for this worker; it admits a request for each number it holds that is
within the limit, until the window ends. Numbers are never given out twice, so no window
admits more than the limit across all workers and pods. A lease starts at one slot and
doubles while the user keeps the worker busy (up to LEASE_MAX), but is never more than a
tenth of what the user has left, so near the limit each request is counted as it comes.
Slots leased and not used are lost when the window ends: a busy user may be refused a
little early (a tenth of the limit at most), never late. Once refused in a window, a
user is refused by this worker until it ends without another round trip.

A refusal is 429 problem+json with Retry-After, the seconds until the window ends. The
probes, /metrics, static files and unknown paths are never limited; RATE_LIMIT=off counts nothing (for
a gateway that limits already, and to measure what the limit costs).

When Redis cannot be reached (REDIS_TIMEOUT_MS), each worker counts in its own memory for
OPEN_SECONDS before it tries Redis again: the limit stays in force, per worker instead
of shared, and no request waits on Redis meanwhile.

This replaced flask-limiter: `make bench` measured its request hook at ~200 µs of CPU per
request before its Redis round trip (and ~60 µs even for a request it exempts), more
than the ceiling app spends on a whole request. `limits`, the library under it, still
parses RATE_LIMIT.
"""
import logging
import math
import threading
import time

import limits
import redis
from flask import request

from .errors import Problem
from .identity import current_user

log = logging.getLogger(__name__)

# Reserves ARGV[1] slots of the count KEYS[1]; the window's first lease sets its expiry.
LEASE_SCRIPT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
"""
LEASE_MAX = 64
OPEN_SECONDS = 1.0
EXEMPT_BLUEPRINTS = ("health", "metrics")
MAX_CALLERS = 10_000  # callers a worker remembers; past it, those of older windows go


class Lease:
    """What this worker knows of one caller's window: the slots it holds, the next lease's size."""
    __slots__ = ("window", "next", "last", "size", "refused")

    def __init__(self, window):
        self.window, self.next, self.last, self.size, self.refused = window, 1, 0, 1, False


class RateLimiter:
    def __init__(self, limit, client):
        self.limit, self.seconds = limit.amount, limit.get_expiry()
        self.client = client
        self.script = client.register_script(LEASE_SCRIPT) if client is not None else None
        self.leases = {}  # caller -> Lease
        self.local = {}  # caller -> [window, count], while Redis is out of reach
        self.lock = threading.Lock()
        self.open_until = 0.0

    def hit(self, caller):
        """Count one request of `caller`: None if it may go on, else seconds until it may retry."""
        now = time.time()
        window = int(now // self.seconds)
        retry_after = max(1, math.ceil((window + 1) * self.seconds - now))
        with self.lock:
            lease = self.leases.get(caller)
            if lease is None or lease.window != window:
                if len(self.leases) >= MAX_CALLERS:
                    self.leases = {k: v for k, v in self.leases.items() if v.window == window}
                lease = self.leases[caller] = Lease(window)
            if lease.refused:
                return retry_after
            if lease.next <= lease.last:
                lease.next += 1
                return None
            size = lease.size
        if self.script is None or self.open_until > time.monotonic():
            return self._count_locally(caller, window, retry_after)
        try:
            count = int(self.script(keys=[f"kyb-limit:{caller}:{self.seconds}:{window}"],
                                    args=[size, (self.seconds + 1) * 1000]))
        except redis.RedisError as exc:
            if self.open_until <= time.monotonic():
                log.warning("rate limit: redis unavailable, counting per worker: %s", exc.__class__.__name__)
            self.open_until = time.monotonic() + OPEN_SECONDS
            return self._count_locally(caller, window, retry_after)
        first = count - size + 1  # this request's slot; the lease keeps the ones after it
        with self.lock:
            if first > self.limit:
                lease.refused = True
                return retry_after
            lease.next, lease.last = first + 1, min(count, self.limit)
            lease.size = max(1, min(LEASE_MAX, size * 2, (self.limit - count) // 10))
        return None

    def _count_locally(self, caller, window, retry_after):
        with self.lock:
            counted = self.local.get(caller)
            if counted is None or counted[0] != window:
                if len(self.local) >= MAX_CALLERS:
                    self.local.clear()
                counted = self.local[caller] = [window, 0]
            counted[1] += 1
            return None if counted[1] <= self.limit else retry_after


def _caller():
    """The signed-in user; a caller who cannot be identified is counted by address."""
    try:
        return "user:" + current_user()
    except Problem:
        return "addr:" + (request.remote_addr or "unknown")


def init_app(app):
    setting = app.config["RATE_LIMIT"].strip()
    if setting.lower() == "off":
        return
    limit = limits.parse(setting)
    limiter = RateLimiter(limit, app.extensions["kyb.cache"].client)
    app.extensions["kyb.limiter"] = limiter

    @app.before_request
    def _limit():
        endpoint = request.endpoint
        if endpoint is None or request.blueprint in EXEMPT_BLUEPRINTS or endpoint.rpartition(".")[2] == "static":
            return
        retry_after = limiter.hit(_caller())
        if retry_after is not None:
            raise Problem(429, "too_many_requests",
                          f"The limit is {setting} per user; try again in {retry_after} s.",
                          headers={"Retry-After": str(retry_after)})
