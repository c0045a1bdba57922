"""Prometheus metrics at /metrics: the pages asked for, by route, with their status and time.

gunicorn runs each worker as a process of its own, so with PROMETHEUS_MULTIPROC_DIR set
prometheus_client keeps every value in a file per worker there and a scrape adds them
up (config/gunicorn.conf.py empties the directory at start and retires a dead worker's
gauges). Without it (the test client) the process's own registry is served.

Label values come from a fixed set only: route templates (`/days/<date:date>`, never the
path asked for; `unmatched` for a path no route takes), method names, status classes.
With METRICS_PORT set (Kubernetes), /metrics answers on that port only and nothing else
does, so the Service and the Ingress, which reach the app's http port, never show it.
METRICS_ENABLED=false installs nothing (to measure the cost). The backend's metrics
(cache, MongoDB, flags) are the backend's own: see backend/metrics.py.
"""
import time

from flask import Blueprint, Response, abort, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess)

# The backend's names start with kyb_backend_: one process (a test) may import both apps.
PREFIX = "kyb_frontend"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

REQUESTS = Counter(f"{PREFIX}_http_requests_total", "HTTP requests answered, by route template and status class",
                   ["route", "method", "status"])
LATENCY = Histogram(f"{PREFIX}_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["route", "method", "status"])
IN_FLIGHT = Gauge(f"{PREFIX}_http_requests_in_flight", "HTTP requests being answered now",
                  multiprocess_mode="livesum")

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    """Every metric, summed over the workers, in Prometheus's text format."""
    directory = current_app.config["PROMETHEUS_MULTIPROC_DIR"]
    registry = REGISTRY
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


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

    @app.after_request
    def _count(response):
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        labels = (route, method, f"{response.status_code // 100}xx")
        REQUESTS.labels(*labels).inc()
        LATENCY.labels(*labels).observe(time.perf_counter() - g.metrics_started)
        return response

    @app.teardown_request
    def _end(exc):
        if "metrics_started" in g:
            IN_FLIGHT.dec()

    app.register_blueprint(bp)
