"""JSON log lines on stdout, each carrying the request id of the request it belongs to
(and, when tracing is on, the trace and span ids of the span active when it was logged)."""
import json
import logging
import random
import sys
import time

from flask import g, has_request_context, request

from . import tracing


class JsonFormatter(logging.Formatter):
    _second, _time_text = None, ""

    def time_text(self, created):
        second = int(created)
        if second != self._second:  # one strftime a second, not one a line
            self._time_text, self._second = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(created)), second
        return self._time_text

    def format(self, record):
        line = {
            "time": self.time_text(record.created),
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

    def access_line(self, fields):
        """An INFO line of kyb.access, the same JSON as format() makes of a record."""
        line = {"time": self.time_text(time.time()), "level": "INFO", "logger": "kyb.access", "message": "request",
                "request_id": g.request_id}
        ids = tracing.span_ids()
        if ids:
            line["trace_id"], line["span_id"] = ids
        line.update(fields)
        return json.dumps(line, ensure_ascii=False)


def setup(level, stream=None):
    """Send every log record of the process to `stream` (stdout) as one JSON line.

    The lines carry none of what logging otherwise finds out for every record (the
    caller's file and line, thread, process): skipping it is the logging HOWTO's own
    advice ("Optimization"), and halves the cost of the access log line per request.
    """
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def write_access(fields):
    """One access line, written by the handler setup() installed without a LogRecord: the
    logging machinery around a record cost as much as the rest of a cached read."""
    handlers = logging.getLogger().handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if handler is None or not isinstance(handler.formatter, JsonFormatter):  # logging set up by someone else
        logging.getLogger("kyb.access").info("request", extra=fields)
        return
    text = handler.formatter.access_line(fields) + "\n"
    with handler.lock:
        handler.stream.write(text)
        handler.stream.flush()


def init_app(app):
    access = logging.getLogger("kyb.access")

    @app.before_request
    def _start():
        incoming = request.headers.get("X-Request-ID", "")
        # Accept a caller's id only if it is short and plain, so logs stay clean.
        # A fresh id needs to be unique, not secret: random's generator, not the OS's (a system call).
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else f"{random.getrandbits(128):032x}"
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers["X-Request-ID"] = g.request_id
        if access.isEnabledFor(logging.INFO):
            write_access({"method": request.method, "path": request.path, "status": response.status_code,
                          "duration_ms": round((time.perf_counter() - g.started) * 1000, 2)})
        return response
