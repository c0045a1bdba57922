"""Probes: /healthz says the process serves; /readyz says it can reach the backend."""
from flask import Blueprint, jsonify

from .backend_client import backend

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    ready = backend().healthy()
    body = {"status": "ok" if ready else "unavailable", "backend": "ok" if ready else "unavailable"}
    return jsonify(body), 200 if ready else 503
