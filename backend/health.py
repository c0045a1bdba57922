"""Probes: /healthz says the process serves; /readyz says it can reach its database."""
from flask import Blueprint, jsonify
from pymongo.errors import PyMongoError

from . import db, schemas
from .cache import get_cache
from .flags import get_flags
from .openapi import doc

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@doc("Liveness: the process serves (no I/O)", "health", response=schemas.Health)
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@doc("Readiness: MongoDB answers; the cache and flags are reported", "health", response=schemas.Ready, description="503 when the database is unreachable; the cache being down does not make the backend unready.")
def readyz():
    try:
        db.ping()
        database = "ok"
    except PyMongoError:
        database = "unavailable"
    body = {"status": "ok" if database == "ok" else "unavailable", "database": database,
            "cache": get_cache().ping(), "flags": get_flags().status()}
    return jsonify(body), 200 if database == "ok" else 503
