"""Redis cache-aside for the journal's read functions.

Keys are versioned by *generation tokens*: one per user (for views over the
whole journal: day lists, backlog, notes, stats, export) and one per day (for a
day view). A write sets fresh tokens for what it changed, so older entries are
never read again and expire by TTL. A reader takes the token before it reads
MongoDB, so a write that lands meanwhile cannot be hidden by a late fill.

Redis is optional at run time: any Redis error opens a short circuit (no Redis
calls for a second), requests are served from MongoDB, and invalidations that
could not be sent are replayed before the cache is trusted again.
"""
import json
import logging
import time
import uuid

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# Returns [generation, cached value or false]; mints a generation if it is missing
# (evicted or never set), so an evicted token can never resurrect old entries.
READ_SCRIPT = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  gen = ARGV[1]
  redis.call('SET', KEYS[1], gen, 'EX', ARGV[3])
end
return {gen, redis.call('GET', ARGV[2] .. gen)}
"""
OPEN_SECONDS = 1.0


class Cache:
    def __init__(self, url, timeout_ms, ttl):
        self.ttl = ttl
        self.gen_ttl = ttl * 10
        self.client = None
        if url:
            timeout = timeout_ms / 1000
            self.client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0), health_check_interval=0,
            )
            self.read_script = self.client.register_script(READ_SCRIPT)
        self.open_until = 0.0
        self.pending = {}  # generation keys whose invalidation could not be sent
        self.stats = {"hits": 0, "misses": 0, "errors": 0}

    @property
    def state(self):
        if self.client is None:
            return "disabled"
        return "degraded" if self.open_until > time.monotonic() or self.pending else "ok"

    def _usable(self):
        if self.client is None or self.open_until > time.monotonic():
            return False
        if self.pending:
            try:
                self._send(self.pending)
            except redis.RedisError as exc:
                self._fail(exc)
                return False
            self.pending.clear()
        return True

    def _send(self, tokens):
        pipe = self.client.pipeline(transaction=False)
        pipe.mset(tokens)
        for key in tokens:
            pipe.expire(key, self.gen_ttl)
        pipe.execute()

    def _fail(self, exc):
        self.stats["errors"] += 1
        if self.open_until <= time.monotonic():
            log.warning("redis unavailable, serving from MongoDB: %s", exc.__class__.__name__)
        self.open_until = time.monotonic() + OPEN_SECONDS

    def get_or_load(self, gen_key, key, load):
        """The value cached under `key` at the current generation, or load() and cache it."""
        if not self._usable():
            return load()
        try:
            gen, raw = self.read_script(keys=[gen_key], args=[uuid.uuid4().hex, key + ":", self.gen_ttl])
        except redis.RedisError as exc:
            self._fail(exc)
            return load()
        if raw:
            self.stats["hits"] += 1
            return json.loads(raw)
        self.stats["misses"] += 1
        value = load()
        try:
            self.client.set(key + ":" + gen.decode(), json.dumps(value, separators=(",", ":")), ex=self.ttl)
        except redis.RedisError as exc:
            self._fail(exc)
        return value

    def invalidate(self, gen_keys):
        """Give each generation key a fresh token: entries made under the old one are dead."""
        tokens = {key: uuid.uuid4().hex for key in gen_keys}
        if self.client is None or not tokens:
            return
        if self._usable():
            try:
                self._send(tokens)
                return
            except redis.RedisError as exc:
                self._fail(exc)
        self.pending.update(tokens)

    def ping(self):
        if self.client is None:
            return "disabled"
        try:
            self.client.ping()
        except redis.RedisError:
            return "degraded"
        return "ok" if not self.pending else "degraded"


def user_gen(user):
    return f"kyb:{user}:gen"


def day_gen(user, date):
    return f"kyb:{user}:day:{date}:gen"


def get_cache():
    return current_app.extensions["kyb.cache"]


def init_app(app):
    app.extensions["kyb.cache"] = Cache(app.config["REDIS_URL"], app.config["REDIS_TIMEOUT_MS"],
                                        app.config["CACHE_TTL_SECONDS"])
