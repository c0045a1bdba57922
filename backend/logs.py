"""JSON log lines on stdout, each carrying the request id of the request it belongs to
(and, when tracing is on, the trace and span ids of the span active when it was logged)."""
import json
import logging
import sys
import time
import uuid

from flask import g, has_request_context, request

from . import tracing


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            line["request_id"] = g.request_id
        ids = tracing.span_ids()
        if ids:
            line["trace_id"], line["span_id"] = ids
        for key in ("method", "path", "status", "duration_ms", "user"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup(level, stream=None):
    """Send every log record of the process to `stream` (stdout) as one JSON line."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def init_app(app):
    access = logging.getLogger("kyb.access")

    @app.before_request
    def _start():
        incoming = request.headers.get("X-Request-ID", "")
        # Accept a caller's id only if it is short and plain, so logs stay clean.
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers["X-Request-ID"] = g.request_id
        duration_ms = round((time.perf_counter() - g.started) * 1000, 2)
        access.info(
            "request",
            extra={"method": request.method, "path": request.path, "status": response.status_code,
                   "duration_ms": duration_ms},
        )
        return response
