"""Server-side sessions in Redis: the browser's cookie carries only a random id.

Every worker and replica reads the same sessions, so a sign-in holds wherever a request
lands. What a session holds (the sign-in's tokens among it) never leaves the server. The
cookie is 256 random bits, made anew at sign-in and sign-out (`rotate`), HttpOnly,
SameSite=Lax, and Secure with SESSION_COOKIE_SECURE. A session lives SESSION_SECONDS
after its last change (Keycloak's longest sign-in session), then Redis drops it.

When Redis cannot be reached: a session that cannot be read is marked `unavailable`
(auth.py then refuses the request before any view runs), and one that cannot be written
raises SessionStoreUnavailable; errors.py shows either as a 503 page.
"""
import logging
import secrets

import redis
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.datastructures import CallbackDict

log = logging.getLogger(__name__)
KEY_PREFIX = "kyb:session:"
SESSION_SECONDS = 10 * 3600
TIMEOUT_SECONDS = 2
MAX_ID_LENGTH = 64


class SessionStoreUnavailable(Exception):
    """Redis, where the sessions live, cannot be reached."""


class RedisSession(CallbackDict, SessionMixin):
    """A session's data; `sid` is None until it is first saved."""

    def __init__(self, data=None, sid=None, unavailable=False):
        def changed(session):
            session.modified = True

        super().__init__(data, changed)
        self.sid, self.unavailable = sid, unavailable
        self.modified = self.rotated = False

    def rotate(self):
        """Save the session under a new id and drop the old one (against session fixation)."""
        self.rotated = self.modified = True


class RedisSessionInterface(SessionInterface):
    serializer = TaggedJSONSerializer()

    def __init__(self, store):
        self.store = store

    def open_session(self, app, request):
        sid = request.cookies.get(self.get_cookie_name(app), "")
        # Static files need no session: spare Redis the browser's requests for them.
        if not sid or len(sid) > MAX_ID_LENGTH or request.path.startswith(f"{app.static_url_path}/"):
            return RedisSession()
        try:
            data = self.store.get(KEY_PREFIX + sid)
        except redis.RedisError as exc:
            log.warning("session store unavailable: %s", exc.__class__.__name__)
            return RedisSession(sid=sid, unavailable=True)
        # None: expired, ended, or an id we never gave out; a new session gets a new id.
        return RedisSession() if data is None else RedisSession(self.serializer.loads(data), sid)

    def save_session(self, app, session, response):
        if session.unavailable or not session.modified:
            return
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        old_sid = session.sid
        try:
            if old_sid and (session.rotated or not session):
                self.store.delete(KEY_PREFIX + old_sid)
            if session:
                if session.rotated or not old_sid:
                    session.sid = secrets.token_urlsafe(32)
                self.store.set(KEY_PREFIX + session.sid, self.serializer.dumps(dict(session)), ex=SESSION_SECONDS)
        except redis.RedisError as exc:
            log.warning("session store unavailable: %s", exc.__class__.__name__)
            session.unavailable = True  # the error page's response must not try again
            raise SessionStoreUnavailable() from None
        if not session:
            if old_sid:
                response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app),
                                       httponly=True, samesite=self.get_cookie_samesite(app))
            return
        response.set_cookie(name, session.sid, domain=domain, path=path, httponly=self.get_cookie_httponly(app),
                            secure=self.get_cookie_secure(app), samesite=self.get_cookie_samesite(app))


def init_app(app):
    # No retry with backoff: a Redis that is down must make a quick error page, not a slow one.
    store = redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=TIMEOUT_SECONDS,
                                 socket_connect_timeout=TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 1))
    app.extensions["kyb.sessions"] = store
    app.session_interface = RedisSessionInterface(store)
