"""The ceiling of `make bench`: a bare Flask app under the same gunicorn config as the
backend, answering one constant JSON body. The backend's throughput is reported as a
fraction of this app's, measured in the same run, so the machine's speed cancels out.

`make bench` gives it the bytes of the measured day view (CEILING_BODY_FILE), so both
send the same amount over the socket and the ratio shows what the backend's own work
per request costs: sign-in, flags, rate limit, cache, serialization, logging.
"""
import os
from pathlib import Path

from flask import Flask, Response


def create_app():
    app = Flask(__name__)
    path = os.environ.get("CEILING_BODY_FILE")
    body = Path(path).read_bytes() if path else b'{"status":"ok"}'

    @app.get("/")
    def constant():
        return Response(body, mimetype="application/json")

    @app.get("/healthz")
    def healthz():
        return Response(b'{"status":"ok"}', mimetype="application/json")

    return app
