"""Per-user rate limits, counted in Redis so every worker and pod shares them, and almost
free per request.

RATE_LIMIT (a `limits` string: "600 per minute", "10/second") allows each user that many
requests per window; a window starts with the user's first request after the last one
ended (a fixed window, as flask-limiter counts). The count is one Redis key per user,
which expires when the window ends: Redis's clock decides, not the pods'. A worker does
not ask Redis about every request: it *leases* slot numbers. One INCRBY of n (a script,
one round trip, which also answers the window's time left) reserves the numbers
(count-n, count] for this worker; it admits a request for each number it holds that is
within the limit, until the window ends. Numbers are never given out twice, so no window
admits more than the limit across all workers and pods. A lease starts at one slot and
doubles while the user keeps the worker busy (up to LEASE_MAX), but is never more than a
tenth of what the user has left, so near the limit each request is counted as it comes.
Slots leased and not used are lost when the window ends: a busy user may be refused a
little early (each lease holds at most a tenth of what was left), never late. Threads
of a worker that find the lease spent at once each take a lease, and the worker keeps
the slots of all of them. Once refused in a window, a user is refused by this worker
until it ends without another round trip.

A refusal is 429 problem+json with Retry-After, the seconds until the window ends. The
probes, /metrics, static files and unknown paths are never limited; RATE_LIMIT=off
counts nothing (for a gateway that limits already, and to measure what the limit costs).

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

# Reserves ARGV[1] slots of the count KEYS[1]; the window's first lease sets its expiry
# (ARGV[2] ms). Returns the count and the window's milliseconds left.
LEASE_SCRIPT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {n, ttl}
"""
LEASE_MAX = 64
OPEN_SECONDS = 1.0
EXEMPT_BLUEPRINTS = ("health", "metrics")
MAX_CALLERS = 10_000  # callers a worker remembers; past it, those whose window ended go


class Lease:
    """What this worker knows of one caller's window: when it ends (time.monotonic), the
    slot numbers it holds ([next, last] ranges, oldest first), the next lease's size, and
    whether the caller was refused."""
    __slots__ = ("ends", "ranges", "size", "refused")

    def __init__(self, ends):
        self.ends, self.ranges, self.size, self.refused = ends, [], 1, False


class RateLimiter:
    def __init__(self, limit, client):
        self.limit, self.seconds = limit.amount, limit.get_expiry()
        self.script = client.register_script(LEASE_SCRIPT) if client is not None else None
        self.leases = {}  # caller -> Lease
        self.local = {}  # caller -> [end of window (monotonic), count], while Redis is out of reach
        self.lock = threading.Lock()
        self.open_until = 0.0

    def hit(self, caller):
        """Count one request of `caller`: None if it may go on, else seconds until it may retry."""
        sent = time.monotonic()
        with self.lock:
            lease = self.leases.get(caller)
            if lease is not None and lease.ends > sent:
                if lease.refused:
                    return retry_after(lease.ends, sent)
                while lease.ranges:
                    slots = lease.ranges[0]
                    if slots[0] <= slots[1]:
                        slots[0] += 1
                        return None
                    lease.ranges.pop(0)
                size = lease.size
            else:
                size = 1
        if self.script is None or self.open_until > sent:
            return self._count_locally(caller, sent)
        try:
            count, left_ms = self.script(keys=[f"kyb-limit:{caller}:{self.seconds}"], args=[size, self.seconds * 1000])
        except redis.RedisError as exc:
            if self.open_until <= time.monotonic():
                log.warning("rate limit: redis unavailable, counting per worker: %s", exc.__class__.__name__)
            self.open_until = time.monotonic() + OPEN_SECONDS
            return self._count_locally(caller, sent)
        # The window ends `left_ms` after Redis ran the script, which was after `sent`: ending
        # the lease at sent + left_ms spends no slot of this window after it is over.
        ends = sent + left_ms / 1000
        first = count - size + 1  # this request's slot; the lease keeps the ones after it
        with self.lock:
            lease = self.leases.get(caller)
            # Threads of this worker that found the lease spent at once each got a lease: the
            # slots of all of them are kept. A window that ended gives way to the new one (the
            # next window ends at least a window later).
            if lease is None or lease.ends <= sent or abs(lease.ends - ends) > self.seconds / 2:
                if len(self.leases) >= MAX_CALLERS:
                    self.leases = {k: v for k, v in self.leases.items() if v.ends > sent}
                lease = self.leases[caller] = Lease(ends)
            lease.ends = min(lease.ends, ends)
            lease.size = max(1, min(LEASE_MAX, size * 2, (self.limit - count) // 10))
            if first > self.limit:
                lease.refused = not any(a <= b for a, b in lease.ranges)
                return retry_after(ends, sent)
            if first < min(count, self.limit):
                lease.ranges.append([first + 1, min(count, self.limit)])
        return None

    def _count_locally(self, caller, now):
        with self.lock:
            counted = self.local.get(caller)
            if counted is None or counted[0] <= now:
                if len(self.local) >= MAX_CALLERS:
                    self.local.clear()
                counted = self.local[caller] = [now + self.seconds, 0]
            counted[1] += 1
            return None if counted[1] <= self.limit else retry_after(counted[0], now)


def retry_after(ends, now):
    return max(1, math.ceil(ends - now))


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
        wait = limiter.hit(_caller())
        if wait is not None:
            raise Problem(429, "too_many_requests", f"The limit is {setting} per user; try again in {wait} s.",
                          headers={"Retry-After": str(wait)})
