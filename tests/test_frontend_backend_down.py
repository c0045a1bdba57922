"""When the backend is down, slow or failing, the frontend still answers: a friendly 503
page (never a stack trace), a live /healthz and a /readyz that says what is wrong."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hamcrest import assert_that, contains_string, equal_to, has_entries, is_not, less_than

from frontend import create_app
from tests import servers
from tests.stack import frontend_settings


@pytest.fixture
def client_for(redis_server):
    """client_for(backend_url, **settings): a test client of the frontend on that backend."""
    def make(backend_url, **settings):
        app = create_app(frontend_settings(redis_server, BACKEND_URL=backend_url, TESTING=True, **settings))
        client = app.test_client()
        with client.session_transaction() as session:
            session["csrf_token"] = "t"
        return client

    return make


@pytest.fixture
def nothing_listens():
    return f"http://127.0.0.1:{servers.free_port()}"


@pytest.fixture
def silent_backend():
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def failing_backend():
    """A backend that answers every request with a 500 problem."""
    class Failing(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": 500, "code": "internal", "detail": "boom"}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PATCH = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/", "/days/2026-11-24", "/backlog", "/notes", "/stats", "/export/worklog.md"])
def test_a_page_is_a_friendly_503_when_the_backend_is_down(client_for, nothing_listens, path):
    response = client_for(nothing_listens).get(path)

    html = response.get_data(as_text=True)
    assert_that(response.status_code, equal_to(503))
    assert_that(html, contains_string("The journal is unavailable"))
    assert_that(html, contains_string("Nothing was lost"))
    assert_that(html, is_not(contains_string("Traceback")))


def test_a_form_sent_while_the_backend_is_down_gets_the_503_page(client_for, nothing_listens):
    response = client_for(nothing_listens).post("/days/2026-11-24/tasks", data={"text": "x", "csrf_token": "t"})

    assert_that(response.status_code, equal_to(503))


def test_a_backend_that_does_not_answer_is_given_up_after_the_timeout(client_for, silent_backend):
    client = client_for(silent_backend, BACKEND_TIMEOUT_MS=300)

    started = time.monotonic()
    response = client.get("/")

    assert_that(response.status_code, equal_to(503))
    assert_that(time.monotonic() - started, less_than(2))


def test_a_failing_backend_is_shown_as_unavailable_without_its_details(client_for, failing_backend):
    response = client_for(failing_backend).get("/")

    assert_that(response.status_code, equal_to(503))
    assert_that(response.get_data(as_text=True), is_not(contains_string("boom")))


def test_healthz_answers_without_the_backend(client_for, nothing_listens):
    response = client_for(nothing_listens).get("/healthz")

    assert_that(response.status_code, equal_to(200))


@pytest.mark.parametrize("backend", ["nothing_listens", "failing_backend"])
def test_readyz_says_the_backend_is_unavailable(client_for, request, backend):
    response = client_for(request.getfixturevalue(backend)).get("/readyz")

    assert_that(response.status_code, equal_to(503))
    assert_that(response.get_json(), equal_to({"status": "unavailable", "backend": "unavailable"}))


def test_each_request_is_logged_as_one_json_line_with_its_request_id(client_for, nothing_listens, capsys):
    client = client_for(nothing_listens)
    capsys.readouterr()

    client.get("/healthz", headers={"X-Request-ID": "abc-123"})

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert_that(lines[-1], has_entries(logger="kyb.access", method="GET", path="/healthz", status=200,
                                       request_id="abc-123"))
