"""Prometheus metrics at /metrics: requests per route, the cache, MongoDB, Redis, the flags.

gunicorn runs each worker as a process of its own, so with PROMETHEUS_MULTIPROC_DIR set
prometheus_client keeps every value in a file per worker there and a scrape adds them
up (config/gunicorn.conf.py empties the directory at start and retires a dead worker's
gauges). Without it (the flask CLI, the test client) the process's own registry is served.

Label values come from a fixed set only: route templates (`/api/v1/tasks/<task_id>`,
never the path asked for; `unmatched` for a path no route takes), method names, status
classes, MongoDB command names. With METRICS_PORT set (Kubernetes), /metrics answers on
that port only and nothing else does, so the Service and the Ingress, which reach the
app's http port, never show it. METRICS_ENABLED=false installs nothing (to measure the cost).
"""
import time

from flask import Blueprint, Response, abort, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily
from pymongo import monitoring

# The frontend's names start with kyb_frontend_: one process (a test) may import both apps.
PREFIX = "kyb_backend"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
KIB = 1024

REQUESTS = Counter(f"{PREFIX}_http_requests_total", "HTTP requests answered, by route template and status class",
                   ["route", "method", "status"])
LATENCY = Histogram(f"{PREFIX}_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["route", "method", "status"])
IN_FLIGHT = Gauge(f"{PREFIX}_http_requests_in_flight", "HTTP requests being answered now",
                  multiprocess_mode="livesum")
CACHE_HITS = Counter(f"{PREFIX}_cache_hits_total",
                     "Cached values served, by where they came from (near: the process's memory; redis)", ["layer"])
NEAR_HITS = CACHE_HITS.labels("near")  # both exported from the start, at 0
CACHE_HITS.labels("redis")
CACHE_MISSES = Counter(f"{PREFIX}_cache_misses_total", "Reads the cache could not answer (loaded from MongoDB)")
CACHE_ERRORS = Counter(f"{PREFIX}_cache_errors_total", "Redis errors met by the cache (each opens its circuit)")
NEAR_CACHE_INVALIDATIONS = Counter(f"{PREFIX}_near_cache_invalidations_total",
                                   "Invalidation messages applied to this process's near-cache")
MONGODB_LATENCY = Histogram(f"{PREFIX}_mongodb_command_duration_seconds",
                            "Time of a MongoDB command, by command name", ["command"],
                            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
IMPORT_TASKS = Histogram(f"{PREFIX}_import_tasks", "Tasks taken in by one Markdown import",
                         buckets=(0, 10, 100, 1_000, 10_000, 100_000))
IMPORT_SIZE = Histogram(f"{PREFIX}_import_size_bytes", "Size of one imported Markdown file",
                        buckets=(KIB, 10 * KIB, 100 * KIB, 1024 * KIB, 8 * 1024 * KIB, 64 * 1024 * KIB))

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    """Every metric, summed over the workers, in Prometheus's text format."""
    registry = CollectorRegistry()
    directory = current_app.config["PROMETHEUS_MULTIPROC_DIR"]
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(REGISTRY)
    registry.register(LiveState())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class LiveState:
    """What is read when Prometheus asks, not counted: whether Redis answers, and the
    version of the flag file in force (the same as /readyz shows)."""

    def collect(self):
        # Through the app's extensions, not cache.py's get_cache(): cache.py counts into this module.
        state = current_app.extensions["kyb.cache"].ping()
        if state != "disabled":
            redis_up = GaugeMetricFamily(f"{PREFIX}_redis_up",
                                         "1 when Redis answers the cache (no invalidation waits to be sent), else 0")
            redis_up.add_metric([], 1.0 if state == "ok" else 0.0)
            yield redis_up
        flags = GaugeMetricFamily(f"{PREFIX}_flags_version_info", "The version (hash) of the flag file in force",
                                  labels=["version"])
        flags.add_metric([current_app.extensions["kyb.flags"].status()["version"] or "none"], 1.0)
        yield flags


class MongoCommandTimer(monitoring.CommandListener):
    """pymongo's command monitoring: the time of every command, by its name."""

    def started(self, event):
        pass

    def succeeded(self, event):
        MONGODB_LATENCY.labels(event.command_name).observe(event.duration_micros / 1e6)

    def failed(self, event):
        MONGODB_LATENCY.labels(event.command_name).observe(event.duration_micros / 1e6)


def mongo_listeners(app):
    """The command listeners for the app's MongoClient."""
    return [MongoCommandTimer()] if app.config["METRICS_ENABLED"] else []


def observe_import(size, tasks):
    IMPORT_SIZE.observe(size)
    IMPORT_TASKS.observe(tasks)


def init_app(app):
    if not app.config["METRICS_ENABLED"]:
        return
    port = app.config["METRICS_PORT"]

    @app.before_request
    def _start():
        g.metrics_started = time.perf_counter()
        IN_FLIGHT.inc()
        if port and (request.environ.get("SERVER_PORT") == str(port)) != (request.endpoint == "metrics.metrics"):
            abort(404)

    children = {}  # labels -> (the counter's child, the histogram's): no label lookup per request

    @app.after_request
    def _count(response):
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        labels = (route, method, f"{response.status_code // 100}xx")
        counted = children.get(labels)
        if counted is None:
            counted = children[labels] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        counted[0].inc()
        counted[1].observe(time.perf_counter() - g.metrics_started)
        return response

    @app.teardown_request
    def _end(exc):
        if "metrics_started" in g:
            IN_FLIGHT.dec()

    app.register_blueprint(bp)
