"""Load on a running kyb frontend, the way people use it in a browser.

Each simulated user has its own cookie session: it signs in first when credentials are
given (it opens LOADGEN_SIGN_IN_PATH, follows the redirects, and fills in the Keycloak
login form it lands on, as a browser would), looks at every page once (today, days,
week, backlog, notes, stats, /healthz), then reads pages at random and now and then adds
a backlog item through the page's form (with its CSRF token). At the end it prints one
JSON line: requests, failures and latency per action. Exit status: 0 when every request
succeeded, 1 when any failed (or none was made), 2 when the target never answered /healthz.

Settings come from the environment only (SETTINGS below, with their defaults); the
Kubernetes Job (k8s/components/loadgenerator) sets them. It needs Python and `requests`
only, so it runs in the frontend image:

    LOADGEN_TARGET=http://127.0.0.1:8080 LOADGEN_DURATION_SECONDS=10 python bench/loadgen.py

LOADGEN_CONNECT_TO sends the requests for an origin to another address, keeping the
origin in the Host header (like `curl --connect-to`), as `ORIGIN=ADDRESS` pairs separated
by commas. In the cluster the users are where browsers are: LOADGEN_TARGET is the
frontend's browser address, so the sign-in's redirect_uri is one Keycloak accepts, and
that address and Keycloak's (port-forwards on localhost) are reached through the Services.
"""
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from html.parser import HTMLParser
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit

import requests

# name -> (default, what it is)
SETTINGS = {
    "LOADGEN_TARGET": ("http://127.0.0.1:8080", "the frontend's base URL"),
    "LOADGEN_DURATION_SECONDS": ("60", "how long each user looks around, after signing in"),
    "LOADGEN_USERS": ("2", "users at once, each with its own session"),
    "LOADGEN_RATE": ("5", "requests per second over all users; 0: as fast as they can"),
    "LOADGEN_WRITE_SHARE": ("0.1", "the share of actions that add a backlog item"),
    "LOADGEN_WAIT_SECONDS": ("0", "how long to wait for the target's /healthz before starting"),
    "LOADGEN_USERNAME": ("", "sign in as this user (empty: do not sign in)"),
    "LOADGEN_PASSWORD": ("", "and this password"),
    "LOADGEN_SIGN_IN_PATH": ("/", "the page that sends a signed-out browser to the login form"),
    "LOADGEN_CONNECT_TO": ("", "ORIGIN=ADDRESS pairs, comma separated: where to send an origin's requests"),
}
# (path, weight): what a person looks at, most often today's page.
PAGES = [("/", 6), ("/days", 2), ("/week", 2), ("/backlog", 2), ("/notes", 1), ("/stats", 1), ("/healthz", 1)]
TIMEOUT_SECONDS = 10
MAX_REDIRECTS = 10


def settings(environ=None):
    environ = os.environ if environ is None else environ
    return {name: environ.get(name, default) for name, (default, _) in SETTINGS.items()}


class Forms(HTMLParser):
    """The forms of a page: [{"action", "method", "id", "fields": {name: value}}]."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower(),
                               "id": attrs.get("id") or "", "fields": {}})
        elif tag in ("input", "textarea") and self.forms and attrs.get("name"):
            if attrs.get("type") not in ("checkbox", "radio", "submit") or "checked" in attrs:
                self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


def forms_of(html):
    parser = Forms()
    parser.feed(html)
    return parser.forms


def login_form(response):
    """The form asking for a password on this page, or None."""
    if "html" not in response.headers.get("Content-Type", ""):
        return None
    return next((form for form in forms_of(response.text) if "password" in form["fields"]), None)


class Failure(Exception):
    pass


class BrowserCookies(DefaultCookiePolicy):
    """Cookies as browsers keep them: http://localhost and loopback addresses count as secure,
    so Secure cookies go back there too (Keycloak marks its sign-in cookies Secure even
    over http; without them its login form answers 400)."""

    def return_ok_secure(self, cookie, request):
        host = urlsplit(request.get_full_url()).hostname or ""
        trusted = host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")
        return trusted or super().return_ok_secure(cookie, request)


class User:
    """One browser: a cookie session that follows redirects itself, so it can rewrite origins."""

    def __init__(self, config, record):
        self.target = config["LOADGEN_TARGET"].rstrip("/")
        self.connect_to = [tuple(part.rstrip("/") for part in pair.split("=", 1))
                           for pair in config["LOADGEN_CONNECT_TO"].split(",") if "=" in pair]
        self.record = record
        self.http = requests.Session()
        self.http.cookies.set_policy(BrowserCookies())
        self.signed_in = False

    def _route(self, url):
        """(the URL to send the request to, the Host header to send it with or None)."""
        for origin, address in self.connect_to:
            if url == origin or url.startswith((origin + "/", origin + "?")):
                return address + url[len(origin):], urlsplit(origin).netloc
        return url, None

    def fetch(self, method, url, data=None):
        """The final response after following redirects (a 303 or 302 after a POST is a GET);
        its `address` is the URL as the browser sees it."""
        url = urljoin(self.target + "/", url)
        for _ in range(MAX_REDIRECTS):
            send_to, host = self._route(url)
            request = self.http.prepare_request(
                requests.Request(method, send_to, data=data, headers={"Host": host} if host else None))
            # prepare_request picks cookies by requests' own policy: pick them again by ours.
            request.headers.pop("Cookie", None)
            request.prepare_cookies(self.http.cookies)
            response = self.http.send(request, allow_redirects=False, timeout=TIMEOUT_SECONDS)
            if response.status_code not in (301, 302, 303, 307, 308):
                response.address = url
                return response
            url = urljoin(url, response.headers["Location"])
            if response.status_code in (301, 302, 303):
                method, data = "GET", None
        raise Failure(f"more than {MAX_REDIRECTS} redirects")

    def sign_in(self, path, username, password):
        """Open `path` and fill in the login form it leads to; Failure if the password is refused."""
        page = self.fetch("GET", path)
        form = login_form(page)
        if form is None:
            return False  # nothing asked for a password: the target does not need sign-in
        fields = dict(form["fields"], username=username, password=password)
        answer = self.fetch("POST", urljoin(page.address, form["action"]), data=fields)
        if answer.status_code >= 400 or login_form(answer) is not None:
            raise Failure(f"signing in as {username} was refused (HTTP {answer.status_code} at {answer.address})")
        self.signed_in = True
        return True

    def timed(self, name, method, path, data=None):
        """One action, recorded under `name`; the response, or None if it failed."""
        started = time.perf_counter()
        error = None
        try:
            response = self.fetch(method, path, data)
            if response.status_code >= 400:
                error = f"HTTP {response.status_code}"
            elif self.signed_in and login_form(response) is not None:
                error = "signed out: got the login form"
        except (requests.RequestException, Failure) as exc:
            response, error = None, exc.__class__.__name__
        self.record(name, time.perf_counter() - started, error)
        return None if error else response

    def read(self, path):
        self.timed(f"GET {path}", "GET", path)

    def add_backlog_item(self):
        """Open the backlog and submit its add form, CSRF token included."""
        page = self.timed("GET /backlog", "GET", "/backlog")
        if page is None:
            return
        form = next((f for f in forms_of(page.text) if f["action"].endswith("/backlog") and "text" in f["fields"]),
                    None)
        if form is None:
            self.record("POST /backlog", 0.0, "no add form on /backlog")
            return
        fields = dict(form["fields"], text=f"Load test item {uuid.uuid4().hex[:8]}")
        self.timed("POST /backlog", "POST", urljoin(page.address, form["action"]), fields)


class Tally:
    """Latencies and failures by action, shared by the users' threads."""

    def __init__(self):
        self.seconds, self.failures, self.errors = {}, {}, {}
        self.sign_ins = {"signed in": 0, "not asked": 0}
        self.lock = threading.Lock()

    def __call__(self, name, seconds, error=None):
        with self.lock:
            self.seconds.setdefault(name, []).append(seconds)
            if error:
                self.failures[name] = self.failures.get(name, 0) + 1
                self.errors[error] = self.errors.get(error, 0) + 1

    def summary(self, elapsed):
        def quantile(values, q):
            return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 1) \
                if len(values) > 1 else round(values[0] * 1000, 1)

        actions = {name: {"requests": len(values), "failures": self.failures.get(name, 0),
                          "p50_ms": quantile(values, 50), "p99_ms": quantile(values, 99)}
                   for name, values in sorted(self.seconds.items())}
        total = sum(len(values) for values in self.seconds.values())
        return {"requests": total, "failures": sum(self.failures.values()), "seconds": round(elapsed, 1),
                "requests_per_second": round(total / elapsed, 1) if elapsed else 0.0,
                "sign_ins": self.sign_ins, "errors": self.errors, "actions": actions}


def wait_for(config, seconds):
    """True once the target's /healthz answers 200, trying for `seconds` (at least once)."""
    deadline = time.monotonic() + seconds
    probe = User(config, lambda *args: None)
    while True:
        try:
            if probe.fetch("GET", "/healthz").status_code == 200:
                return True
        except (requests.RequestException, Failure):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(1)


def run_user(config, tally, seconds, period, seed):
    """One user: sign in if asked to, then `seconds` of looking around."""
    rng = random.Random(seed)
    user = User(config, tally)
    if config["LOADGEN_USERNAME"]:
        started = time.perf_counter()
        try:
            asked = user.sign_in(config["LOADGEN_SIGN_IN_PATH"], config["LOADGEN_USERNAME"],
                                 config["LOADGEN_PASSWORD"])
            tally("sign-in", time.perf_counter() - started)
            with tally.lock:
                tally.sign_ins["signed in" if asked else "not asked"] += 1
        except (requests.RequestException, Failure) as exc:
            tally("sign-in", time.perf_counter() - started, str(exc))
            return
    stop_at = time.monotonic() + seconds
    paths, weights = zip(*PAGES)
    write_share = float(config["LOADGEN_WRITE_SHARE"])
    # A first look at every page (and one write, if any), then pages at random by weight.
    tour = [*paths, None] if write_share > 0 else list(paths)
    next_at = time.monotonic() + rng.random() * period  # spread the users' first requests
    while True:
        if period:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += period
        if time.monotonic() >= stop_at:
            return
        if tour:
            path = tour.pop(0)
        else:
            path = None if rng.random() < write_share else rng.choices(paths, weights)[0]
        if path is None:
            user.add_backlog_item()
        else:
            user.read(path)


def main(environ=None):
    config = settings(environ)
    users, rate = int(config["LOADGEN_USERS"]), float(config["LOADGEN_RATE"])
    if not wait_for(config, float(config["LOADGEN_WAIT_SECONDS"])):
        print(json.dumps({"error": f"{config['LOADGEN_TARGET']}/healthz does not answer"}), flush=True)
        return 2
    tally = Tally()
    started = time.monotonic()
    seconds = float(config["LOADGEN_DURATION_SECONDS"])
    period = users / rate if rate > 0 else 0.0  # each user's time between actions
    threads = [threading.Thread(target=run_user, args=(config, tally, seconds, period, n), daemon=True)
               for n in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = tally.summary(time.monotonic() - started)
    report.update(target=config["LOADGEN_TARGET"], users=users)
    print(json.dumps(report), flush=True)
    return 0 if report["requests"] and not report["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
