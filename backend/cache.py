"""Redis cache-aside for the journal's read functions.

Keys are versioned by *generation tokens*: one per user (for views over the
whole journal: day lists, backlog, notes, stats, export) and one per day (for a
day view). A write sets fresh tokens for what it changed, so older entries are
never read again and expire by TTL. A reader takes the token before it reads
MongoDB, so a write that lands meanwhile cannot be hidden by a late fill.

Each process also keeps a *near-cache*: the values it read lately, in its own
memory, so a repeated read costs no Redis round trip. Redis keeps it correct:
every invalidation is published on CHANNEL in the same pipeline that sets the
new tokens, and a process reads its subscription (a non-blocking poll of the
socket) before it serves anything from memory. Redis queues the message for
every subscriber before it answers the writer, so a write that was
acknowledged has been seen. An entry is kept in memory no longer than Redis keeps
it (its remaining TTL), so a change made behind the app's back (a restore, an admin fix
in the database) is served by nobody after the TTL. The near-cache is trusted only for LEASE_SECONDS
after Redis last answered a PING on the subscription; a writer that cannot
reach Redis waits out the lease before it answers, so by then no process trusts
its memory. A lost subscription empties the near-cache. Invalidations ignore the circuit
and wait longer than reads (INVALIDATE_TIMEOUT, one retry): one lost to a slow moment of
Redis would leave the old value in the other processes' memory and in Redis.

Redis is optional at run time: any Redis error opens a short circuit (no Redis
calls for a second), requests are served from MongoDB, and invalidations that
could not be sent are replayed before the cache is trusted again.
"""
import json
import logging
import os
import select
import threading
import time
import uuid

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import metrics

log = logging.getLogger(__name__)

# Returns [generation, cached value or false, its time to live in ms]; mints a generation if
# it is missing (evicted or never set), so an evicted token can never resurrect old entries.
READ_SCRIPT = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  gen = ARGV[1]
  redis.call('SET', KEYS[1], gen, 'EX', ARGV[3])
end
local key = ARGV[2] .. gen
return {gen, redis.call('GET', key), redis.call('PTTL', key)}
"""
OPEN_SECONDS = 1.0
# Every invalidation is also published here, for the near-caches of all processes.
CHANNEL = "kyb:invalidations"
# A message of this one token tells every near-cache to forget all it holds.
EVERYTHING = "*"
# A near-cache is trusted this long after Redis answered a PING sent on its subscription.
LEASE_SECONDS = 0.3
PING_EVERY = 0.1
# Invalidations wait longer than reads and ignore the circuit: one lost to a slow moment of
# Redis would let the other processes serve the old value.
INVALIDATE_TIMEOUT = 0.25


class NearCache:
    """This process's copy of recent values, trusted only while its subscription is live.

    Entries are grouped by generation key: a message naming a key drops its group. Each
    entry expires when its copy in Redis does (monotonic deadline). `seq` counts the messages seen, so a value read from Redis while an
    invalidation arrived is not kept. Thread-safe (gunicorn's threads share it).
    """

    def __init__(self, pool, max_entries):
        self.pool = pool
        self.max_entries = max_entries
        self.lock = threading.Lock()
        self.groups = {}  # generation key -> {key: (JSON text, monotonic expiry)}
        self.size = 0
        self.seq = 0
        self.conn = None
        self.socket_poll = None  # select.poll of the subscription's socket
        self.pid = None
        self.trusted_until = 0.0
        self.ping_sent = None  # monotonic time of the PING not answered yet
        self.last_ping = 0.0
        self.stats = {"hits": 0, "invalidations": 0, "resets": 0}

    def get(self, gen_key, key):
        """(True, JSON text) if this process may serve `key` from memory, else (False, seq)."""
        with self.lock:
            entry = self.groups.get(gen_key, {}).get(key) if self._poll() else None
            if entry is None or entry[1] <= time.monotonic():
                return False, self.seq
            raw = entry[0]
            self.stats["hits"] += 1
        metrics.NEAR_HITS.inc()
        return True, raw

    def put(self, gen_key, key, raw, seq, expires):
        """Keep `raw` until `expires` unless an invalidation arrived since `seq` was read."""
        with self.lock:
            if not self._poll() or self.seq != seq:
                return
            if self.size >= self.max_entries:
                self._clear()
            group = self.groups.setdefault(gen_key, {})
            self.size += key not in group
            group[key] = (raw, expires)

    def drop(self, gen_keys):
        """Forget the groups this process invalidated itself (its own message follows)."""
        with self.lock:
            self._drop(gen_keys)

    def _drop(self, gen_keys):
        self.seq += 1
        for gen_key in gen_keys:
            self.size -= len(self.groups.pop(gen_key, ()))

    def _clear(self):
        self.seq += 1
        self.groups.clear()
        self.size = 0

    def _poll(self):
        """Apply the messages waiting on the subscription; whether memory may be trusted."""
        now = time.monotonic()
        try:
            if self.conn is None or self.pid != os.getpid():
                self._subscribe()
            # Reading stops only when redis-py's buffer is empty too (can_read), so anything new
            # is on the socket: one poll(2) says whether to look, cheaper than can_read's
            # timeout juggling on every request.
            if self.socket_poll.poll(0):
                while self.conn.can_read(timeout=0):
                    reply = self.conn.read_response(push_request=True)
                    if isinstance(reply, list) and reply[0] == b"message":
                        tokens = reply[2].decode().split()
                        self._clear() if tokens == [EVERYTHING] else self._drop(tokens)
                        self.stats["invalidations"] += 1
                        metrics.NEAR_CACHE_INVALIDATIONS.inc()
                    elif self.ping_sent is not None:  # the only other reply: PONG
                        self.trusted_until = self.ping_sent + LEASE_SECONDS
                        self.ping_sent = None
            if self.ping_sent is None and now - self.last_ping >= PING_EVERY:
                self.conn.send_command("PING")
                self.ping_sent = self.last_ping = now
        except (redis.RedisError, OSError) as exc:
            self._reset(exc)
            return False
        return now < self.trusted_until

    def _subscribe(self):
        self._clear()
        self.conn, self.pid = self.pool.make_connection(), os.getpid()
        self.conn.send_command("SUBSCRIBE", CHANNEL)
        self.conn.read_response(push_request=True)
        self.socket_poll = select.poll()
        self.socket_poll.register(self.conn._sock, select.POLLIN | select.POLLPRI)
        self.ping_sent, self.trusted_until = None, 0.0

    def _reset(self, exc):
        """The subscription is gone: messages may have been missed, so forget everything."""
        if self.conn is not None:
            self.stats["resets"] += 1
            log.warning("near-cache subscription lost: %s", exc.__class__.__name__)
            if self.pid == os.getpid():
                self.conn.disconnect()
        self.conn, self.trusted_until = None, 0.0
        self._clear()


class Cache:
    def __init__(self, url, timeout_ms, ttl, near_entries=0):
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
            self.invalidator = redis.Redis.from_url(
                url, socket_timeout=max(timeout, INVALIDATE_TIMEOUT), socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1), health_check_interval=0,
            )
        self.near = NearCache(self.client.connection_pool, near_entries) if url and near_entries else None
        self.open_until = 0.0
        self.down_since = None  # when the first failing Redis call of this outage was sent
        self.pending = {}  # generation keys whose invalidation could not be sent
        self.pending_lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "errors": 0}

    def _usable(self):
        if self.client is None or self.open_until > time.monotonic():
            return False
        if self.pending:
            try:
                self._send_pending()
            except redis.RedisError as exc:
                self._fail(exc)
                return False
        return True

    def _send_pending(self):
        """Send every pending invalidation; each stays pending unless it was sent."""
        with self.pending_lock:
            batch = dict(self.pending)
        if batch:
            self._send(batch)
        with self.pending_lock:
            for key, token in batch.items():
                if self.pending.get(key) == token:
                    del self.pending[key]

    def _send(self, tokens):
        sent = time.monotonic()
        pipe = self.invalidator.pipeline(transaction=False)
        pipe.mset(tokens)
        for key in tokens:
            pipe.expire(key, self.gen_ttl)
        pipe.publish(CHANNEL, " ".join(tokens))
        try:
            pipe.execute()
        except redis.RedisError:
            if self.down_since is None:
                self.down_since = sent
            raise
        self.down_since = None

    def _fail(self, exc):
        self.stats["errors"] += 1
        metrics.CACHE_ERRORS.inc()
        if self.open_until <= time.monotonic():
            log.warning("redis unavailable, serving from MongoDB: %s", exc.__class__.__name__)
        self.open_until = time.monotonic() + OPEN_SECONDS
        if self.down_since is None:
            self.down_since = time.monotonic()

    def get_or_load(self, gen_key, key, load):
        """The value cached under `key` at the current generation, or load() and cache it."""
        raw, value = self._get(gen_key, key, load)
        return json.loads(raw) if value is None else value

    def get_json(self, gen_key, key, load):
        """The same as JSON text (bytes), for a view that sends it as it is: a hit is not decoded."""
        raw, value = self._get(gen_key, key, load)
        return raw if raw is not None else _dumps(value)

    def _get(self, gen_key, key, load):
        """(JSON text, None) for a hit, (its text or None, value) when load() made it."""
        if not self._usable():
            return None, load()
        if self.near:
            found, raw = self.near.get(gen_key, key)
            if found:
                return raw, None
            seq = raw
        try:
            gen, raw, ttl_ms = self.read_script(keys=[gen_key], args=[uuid.uuid4().hex, key + ":", self.gen_ttl])
        except redis.RedisError as exc:
            self._fail(exc)
            return None, load()
        self.down_since = None
        value = None
        expires = time.monotonic() + (ttl_ms / 1000 if raw else self.ttl)
        if raw:
            self.stats["hits"] += 1
            metrics.CACHE_HITS.labels("redis").inc()
        else:
            self.stats["misses"] += 1
            metrics.CACHE_MISSES.inc()
            value = load()
            raw = _dumps(value)
            try:
                self.client.set(key + ":" + gen.decode(), raw, ex=self.ttl)
            except redis.RedisError as exc:
                self._fail(exc)
                return raw, value
        if self.near:
            self.near.put(gen_key, key, raw, seq, expires)
        return raw, value

    def invalidate(self, gen_keys):
        """Give each generation key a fresh token: entries made under the old one are dead."""
        tokens = {key: uuid.uuid4().hex for key in gen_keys}
        if self.client is None or not tokens:
            return
        if self.near:
            self.near.drop(tokens)
        with self.pending_lock:
            self.pending.update(tokens)
        try:
            self._send_pending()
            return
        except redis.RedisError as exc:
            self._fail(exc)
        if self.near:
            # Other processes may still trust their memory until their lease ends; the
            # write is answered only after that, so nobody reads the old value after it.
            since = self.down_since if self.down_since is not None else time.monotonic()
            time.sleep(max(0.0, since + LEASE_SECONDS - time.monotonic()))

    def invalidate_everything(self):
        """After the database changed behind the app's back (a restore, an admin's fix): every
        generation key in Redis gets a fresh token and every process forgets its memory."""
        if self.client is None:
            return
        keys = list(self.invalidator.scan_iter(match=user_gen("*"), count=1000))
        for start in range(0, len(keys), 1000):
            self.invalidate([key.decode() for key in keys[start:start + 1000]])
        if self.near:
            with self.near.lock:
                self.near._clear()
        self.invalidator.publish(CHANNEL, EVERYTHING)

    def ping(self):
        if self.client is None:
            return "disabled"
        try:
            self.client.ping()
        except redis.RedisError:
            return "degraded"
        return "ok" if not self.pending else "degraded"


def _dumps(value):
    return json.dumps(value, separators=(",", ":")).encode()


def user_gen(user):
    return f"kyb:{user}:gen"


def day_gen(user, date):
    return f"kyb:{user}:day:{date}:gen"


def get_cache():
    return current_app.extensions["kyb.cache"]


def init_app(app):
    app.extensions["kyb.cache"] = Cache(app.config["REDIS_URL"], app.config["REDIS_TIMEOUT_MS"],
                                        app.config["CACHE_TTL_SECONDS"], app.config["NEAR_CACHE_ENTRIES"])
