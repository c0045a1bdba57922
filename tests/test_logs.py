"""Log lines an operator can follow: JSON, each with the request id of its request."""
import io
import json
import logging

import pytest
from hamcrest import assert_that, equal_to, has_entries, has_item


@pytest.fixture
def app_config():
    return {"LOG_LEVEL": "DEBUG"}


@pytest.fixture
def log_lines(app):
    """What the app's log handler (stdout in production) writes during the test, parsed."""
    handler = logging.getLogger().handlers[0]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    handler.setStream(previous)


def test_every_request_is_logged_as_json_with_its_request_id(client, log_lines):
    client.get("/api/v1/days", headers={"X-Request-ID": "req-42"})
    assert_that(log_lines(), has_item(has_entries(message="request", request_id="req-42", method="GET",
                                                  path="/api/v1/days", status=200)))


def test_a_flag_that_changes_a_response_is_logged_at_debug_level(app, client, log_lines, tmp_path):
    from backend.flags import Flags

    flags = json.loads(open("config/flags.json").read())
    flags["flags"]["stats"]["defaultVariant"] = "off"
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(flags))
    app.extensions["kyb.flags"] = Flags(str(path), "logs-test")
    assert_that(client.get("/api/v1/stats", headers={"X-Request-ID": "req-7"}).status_code, equal_to(403))
    assert_that(log_lines(), has_item(has_entries(level="DEBUG", request_id="req-7",
                                                  message="flag stats is off: refused /api/v1/stats")))
