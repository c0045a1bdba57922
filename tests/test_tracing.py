"""OpenTelemetry traces: one trace from a page of the frontend through its call to the
backend down to MongoDB, log lines that name their trace, OTLP export with each app's
service name, and nothing of OpenTelemetry at all without an OTLP endpoint.

The in-process tests run both apps here (the backend on a thread with werkzeug's
server, the frontend through its test client) on one TracerProvider whose spans go to
an in-memory exporter; instrumenting patches requests, pymongo and redis for the whole
process, so the fixture takes it all back afterwards.
"""
import io
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from hamcrest import assert_that, empty, equal_to, has_entries, has_item, has_items, has_key, is_not, not_
from werkzeug.serving import make_server

from tests.conftest import database_uri
from tests.servers import OtlpCollector
from tests.stack import frontend_settings

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-11-21"


@pytest.fixture(scope="module")
def traced(mongodb_uri, redis_server, redis_url):
    """Both apps, traced into one in-memory exporter; the backend served on a thread."""
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import backend
    import frontend

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    backend.tracing.start(provider)
    frontend.tracing.start(provider)
    database = f"kyb_tracing_{uuid.uuid4().hex[:12]}"
    backend_app = backend.create_app({"MONGODB_URI": database_uri(mongodb_uri, database), "REDIS_URL": redis_url,
                                      "AUTH_DEV_USER_HEADER": True, "TESTING": True})
    server = make_server("127.0.0.1", 0, backend_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    user = f"tracer-{uuid.uuid4().hex[:12]}"
    frontend_app = frontend.create_app(frontend_settings(
        redis_server, BACKEND_URL=f"http://127.0.0.1:{server.server_port}", TESTING=True, AUTH_DEV_USER=user))
    yield {"exporter": exporter, "backend": backend_app, "frontend": frontend_app, "user": user}
    server.shutdown()
    thread.join()
    client = backend_app.extensions["kyb.mongo"]
    client.drop_database(database)
    client.close()
    for instrumentor in (PymongoInstrumentor(), RedisInstrumentor(), RequestsInstrumentor()):
        instrumentor.uninstrument()
    backend.tracing._provider = frontend.tracing._provider = None
    provider.shutdown()


def spans_of(exporter):
    return list(exporter.get_finished_spans())


def scope(span):
    return span.instrumentation_scope.name.rsplit(".", 1)[-1]


def server_span(spans, route):
    matching = [s for s in spans if scope(s) == "flask" and s.attributes.get("http.route") == route]
    assert_that(matching, is_not(empty()), f"no server span for {route} in {[s.name for s in spans]}")
    return matching[0]


def children(spans, parent):
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_a_page_its_backend_call_and_the_mongodb_command_make_one_trace(traced):
    traced["exporter"].clear()

    response = traced["frontend"].test_client().get("/backlog")

    assert_that(response.status_code, equal_to(200))
    spans = spans_of(traced["exporter"])
    page = server_span(spans, "/backlog")
    api = server_span(spans, "/api/v1/backlog")
    calls = [s for s in children(spans, page) if scope(s) == "requests"]
    assert_that([c.context.span_id for c in calls], has_item(api.parent.span_id))
    mongodb = [s for s in children(spans, api) if scope(s) == "pymongo"]
    assert_that(mongodb, is_not(empty()))
    assert_that({s.context.trace_id for s in [page, api, *calls, *mongodb]}, equal_to({page.context.trace_id}))
    assert_that(page.parent, equal_to(None))
    assert_that([s.kind.name for s in (page, calls[0], api, mongodb[0])],
                equal_to(["SERVER", "CLIENT", "SERVER", "CLIENT"]))


def test_redis_calls_are_spans_of_the_request_that_made_them(traced):
    traced["exporter"].clear()
    client = traced["backend"].test_client()

    client.get(f"/api/v1/days/{DAY}", headers={"X-User-Id": traced["user"]})

    spans = spans_of(traced["exporter"])
    request = server_span(spans, "/api/v1/days/<date>")
    assert_that([scope(s) for s in children(spans, request)], has_items("redis", "pymongo"))


@pytest.mark.parametrize("app", ["backend", "frontend"])
def test_log_lines_carry_the_trace_and_span_ids_of_their_request(traced, app):
    module = __import__(app)
    module.logs.setup("INFO")
    handler = logging.getLogger().handlers[0]
    buffer = io.StringIO()
    handler.setStream(buffer)
    traced["exporter"].clear()

    traced[app].test_client().get("/healthz")
    logging.getLogger("tests").info("outside any request")

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    span = server_span(spans_of(traced["exporter"]), "/healthz")
    assert_that(lines, has_item(has_entries(message="request", path="/healthz",
                                            trace_id=format(span.context.trace_id, "032x"),
                                            span_id=format(span.context.span_id, "016x"))))
    outside = next(line for line in lines if line["message"] == "outside any request")
    assert_that(outside, not_(has_key("trace_id")))


# -- switched on and off by OTEL_EXPORTER_OTLP_ENDPOINT, in a process of its own ----------

SERVE_BOTH = """
import json, sys
import backend, frontend
apps = [backend.create_app({"TESTING": True, "MONGODB_URI": sys.argv[1], "REDIS_URL": ""}),
        frontend.create_app({"TESTING": True, "SECRET_KEY": "x"})]
for app in apps:
    assert app.test_client().get("/healthz").status_code == 200
print(json.dumps(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
"""


def serve_both(mongodb_uri, **otel):
    """Run both apps in a fresh Python with only the given OTEL_* variables; the OpenTelemetry modules it loaded."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")} | otel
    result = subprocess.run([sys.executable, "-c", SERVE_BOTH, mongodb_uri], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def tracing_modules(loaded):
    """The OpenTelemetry modules that trace: tracers, exporters, instrumentations. (redis-py
    imports the SDK's metrics module by itself whenever the SDK is installed, and uses it
    only when asked to.)"""
    return [name for name in loaded
            if name.startswith(("opentelemetry.instrumentation", "opentelemetry.exporter", "opentelemetry.sdk.trace"))]


def test_without_an_otlp_endpoint_no_tracer_exporter_or_instrumentation_is_loaded(mongodb_uri):
    assert_that(tracing_modules(serve_both(mongodb_uri)), empty())


@pytest.fixture
def collector():
    receiver = OtlpCollector()
    yield receiver
    receiver.stop()


def test_with_an_otlp_endpoint_each_app_exports_its_requests_under_its_service_name(mongodb_uri, collector):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    loaded = serve_both(mongodb_uri, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url)

    assert_that(tracing_modules(loaded), has_items(
        "opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.requests",
        "opentelemetry.instrumentation.pymongo", "opentelemetry.instrumentation.redis",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.sdk.trace"))
    exported = {}
    for path, content_type, body in collector.received:
        assert_that((path, content_type), equal_to(("/v1/traces", "application/x-protobuf")))
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            exported.setdefault(service, []).extend(span.name for scope_spans in resource_spans.scope_spans
                                                    for span in scope_spans.spans)
    assert_that(sorted(exported), equal_to(["kyb-backend", "kyb-frontend"]))
    for names in exported.values():
        assert_that(names, has_item("GET /healthz"))
