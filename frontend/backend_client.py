"""The one way the frontend talks to the backend: its JSON API over HTTP.

One pooled `requests.Session` per process, a timeout on every call, and two
kinds of failure: `BackendUnavailable` (cannot connect, timed out, or a 5xx:
the user sees a friendly 503 page) and `BackendError` (a 4xx the user can act
on; `Invalid` carries the messages to show next to each field). A refusal by a
feature flag (`read_only`'s 503, `feature_off`'s 403) is `SwitchedOff`.
"""
import logging

import requests
from flask import current_app
from requests.adapters import HTTPAdapter

from . import logs
from .auth import backend_headers

log = logging.getLogger(__name__)
API = "/api/v1"
# gunicorn runs each worker with a few threads; one pooled connection per thread is enough.
POOL_SIZE = 8


class BackendUnavailable(Exception):
    """The backend cannot answer now (down, too slow, or failing)."""


class BackendError(Exception):
    """A 4xx answer: the request was wrong or names something that is not there."""

    def __init__(self, status, code, detail, errors=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors or []

    @property
    def field_errors(self):
        """{field: message} of the errors that name a field (the first message per field)."""
        found = {}
        for error in self.errors:
            found.setdefault(error.get("field") or "", error.get("message", ""))
        return found


class NotFound(BackendError):
    pass


class SwitchedOff(BackendError):
    """Refused by a feature flag: the journal is read-only (503) or the feature is off (403)."""


# The backend's problem codes for a refusal by a flag.
FLAG_CODES = ("read_only", "feature_off")
# The flags the frontend uses, as the backend answers them when its flag file lacks them:
# what a page is rendered with when the backend's flags cannot be had.
DEFAULT_FLAGS = {"read_only": False, "markdown_import": True, "stats": True, "carry_over": True,
                 "ui_theme": "light", "progress_bar": False}
THEMES = ("light", "dark", "contrast")


class Invalid(BackendError):
    """The input was refused; the form it came from is shown again with the messages."""

    def __init__(self, detail, errors=None, status=400, code="invalid"):
        super().__init__(status, code, detail, errors)


def _error(response):
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") or response.reason or "The request was refused."
    code, errors = body.get("code", "error"), body.get("errors") or []
    if code in FLAG_CODES:
        return SwitchedOff(response.status_code, code, detail, errors)
    if response.status_code == 404:
        return NotFound(404, code, detail, errors)
    if response.status_code in (400, 409, 412, 413, 415, 422):
        return Invalid(detail, errors, response.status_code, code)
    return BackendError(response.status_code, code, detail, errors)


class Backend:
    """The backend's API as Python calls; each returns the decoded JSON (or bytes)."""

    def __init__(self, base_url, timeout_ms):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout_ms / 1000
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def call(self, method, path, **kwargs):
        """The backend's response to one request; raises on anything but 2xx/304."""
        headers = kwargs.pop("headers", {})
        if logs.request_id():
            headers["X-Request-ID"] = logs.request_id()
        headers.update(backend_headers())
        try:
            response = self.session.request(method, self.base_url + path, headers=headers,
                                            timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            log.warning("backend unreachable: %s", exc.__class__.__name__)
            raise BackendUnavailable(str(exc)) from None
        if response.status_code == 503 and "json" in response.headers.get("Content-Type", ""):
            refused = _error(response)
            if isinstance(refused, SwitchedOff):  # the read_only kill switch, not a failure
                raise refused
        if response.status_code >= 500:
            log.warning("backend failed", extra={"backend_status": response.status_code})
            raise BackendUnavailable(f"backend answered {response.status_code}")
        if response.status_code >= 400:
            raise _error(response)
        return response

    def json(self, method, path, **kwargs):
        response = self.call(method, API + path, **kwargs)
        return response.json() if response.content else None

    @staticmethod
    def _version(version):
        return {"If-Match": f'"{version}"'} if version else {}

    # -- days ---------------------------------------------------------------------
    def list_days(self, date_from=None, date_to=None, limit=50, after=None):
        params = {"from": date_from, "to": date_to, "limit": limit, "after": after}
        return self.json("GET", "/days", params={k: v for k, v in params.items() if v})

    def get_day(self, date):
        return self.json("GET", f"/days/{date}")

    def find_day(self, date):
        """The day, or None if the journal has no such day."""
        try:
            return self.get_day(date)
        except NotFound:
            return None

    def create_day(self, date, start=None, end=None):
        return self.json("POST", "/days", json={"date": date, "start": start, "end": end})

    def change_hours(self, date, start, end, version=None):
        return self.json("PATCH", f"/days/{date}", json={"start": start, "end": end},
                         headers=self._version(version))

    def delete_day(self, date):
        self.json("DELETE", f"/days/{date}")

    def carry_over(self, date, to):
        return self.json("POST", f"/days/{date}/carry-over", json={"to": to})

    # -- tasks --------------------------------------------------------------------
    def add_task(self, date, text, parent_id=None):
        """A task on a day, or in the backlog when date is None."""
        body = {"text": text, "parent_id": parent_id}
        if date is None:
            return self.json("POST", "/backlog", json=body)
        return self.json("POST", f"/days/{date}/tasks", json=body)

    def get_task(self, task_id):
        return self.json("GET", f"/tasks/{task_id}")

    def change_task(self, task_id, version=None, **changes):
        return self.json("PATCH", f"/tasks/{task_id}", json=changes, headers=self._version(version))

    def move_task(self, task_id, date, parent_id=None, index=None):
        return self.json("POST", f"/tasks/{task_id}/move",
                         json={"date": date, "parent_id": parent_id, "index": index})

    def delete_task(self, task_id):
        self.json("DELETE", f"/tasks/{task_id}")

    def backlog(self):
        return self.json("GET", "/backlog")["items"]

    # -- notes --------------------------------------------------------------------
    def notes(self, date=None):
        return self.json("GET", "/notes", params={"date": date} if date else {})["items"]

    def add_note(self, text, date=None):
        return self.json("POST", "/notes", json={"text": text, "date": date})

    def get_note(self, note_id):
        return self.json("GET", f"/notes/{note_id}")

    def change_note(self, note_id, text, version=None):
        return self.json("PATCH", f"/notes/{note_id}", json={"text": text}, headers=self._version(version))

    def delete_note(self, note_id):
        self.json("DELETE", f"/notes/{note_id}")

    # -- the whole journal --------------------------------------------------------
    def import_markdown(self, data, mode):
        """Send the file's bytes untouched, so an export can give back the same bytes."""
        return self.json("POST", "/import", params={"mode": mode}, data=data,
                         headers={"Content-Type": "text/markdown; charset=utf-8"})

    def export_markdown(self, date_from=None, date_to=None):
        params = {k: v for k, v in {"from": date_from, "to": date_to}.items() if v}
        return self.call("GET", API + "/export", params=params).content

    def stats(self, date_from=None, date_to=None):
        params = {k: v for k, v in {"from": date_from, "to": date_to}.items() if v}
        return self.json("GET", "/stats", params=params)

    def flags(self):
        """The flags as they apply to the caller: DEFAULT_FLAGS's keys, each checked for its type."""
        body = self.json("GET", "/flags")
        answered = body.get("flags") if isinstance(body, dict) else None
        answered = answered if isinstance(answered, dict) else {}
        flags = {}
        for name, default in DEFAULT_FLAGS.items():
            value = answered.get(name, default)
            flags[name] = value if type(value) is type(default) else default
        if flags["ui_theme"] not in THEMES:
            flags["ui_theme"] = DEFAULT_FLAGS["ui_theme"]
        return flags

    def healthy(self):
        """True if the backend's liveness probe answers."""
        try:
            self.call("GET", "/healthz")
            return True
        except (BackendUnavailable, BackendError):
            return False


def backend():
    """The app's backend client."""
    return current_app.extensions["kyb.backend"]


def init_app(app):
    app.extensions["kyb.backend"] = Backend(app.config["BACKEND_URL"], app.config["BACKEND_TIMEOUT_MS"])
