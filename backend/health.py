"""Probes: /healthz says the process serves; /readyz says it can reach its database."""
from flask import Blueprint, jsonify
from pymongo.errors import PyMongoError

from . import db
from .cache import get_cache
from .flags import get_flags

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    try:
        db.ping()
        database = "ok"
    except PyMongoError:
        database = "unavailable"
    body = {"status": "ok" if database == "ok" else "unavailable", "database": database,
            "cache": get_cache().ping(), "flags": get_flags().status()}
    return jsonify(body), 200 if database == "ok" else 503
