"""The MongoDB connection: one client per process, bound to the app in the factory."""
from flask import current_app
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.uri_parser import parse_uri

from . import metrics

# Every query the journal makes, with the index that serves it.
INDEXES = {
    "users": [([("user_id", ASCENDING)], {"unique": True})],
    "days": [
        ([("user_id", ASCENDING), ("date", ASCENDING)], {"unique": True}),
        ([("user_id", ASCENDING), ("pos", ASCENDING)], {}),
    ],
    "tasks": [
        ([("user_id", ASCENDING), ("day_id", ASCENDING), ("pos", ASCENDING)], {}),
        ([("user_id", ASCENDING), ("pos", ASCENDING)], {}),
        ([("user_id", ASCENDING), ("done", ASCENDING), ("date", ASCENDING)], {}),
        ([("user_id", ASCENDING), ("carry_count", DESCENDING)], {}),
    ],
    "notes": [
        ([("user_id", ASCENDING), ("day_id", ASCENDING), ("pos", ASCENDING)], {}),
        ([("user_id", ASCENDING), ("pos", ASCENDING)], {}),
    ],
}


def connect(uri, timeout_ms, listeners=()):
    """A client that fails fast (timeout_ms) instead of hanging when the server is gone;
    `listeners` see every command (metrics)."""
    client = MongoClient(
        uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 5, 10000),
        appname="kyb-backend",
        tz_aware=True,
        event_listeners=list(listeners),
    )
    name = parse_uri(uri).get("database") or "kyb"
    return client, client[name]


def ensure_indexes(database):
    for collection, indexes in INDEXES.items():
        for keys, options in indexes:
            database[collection].create_index(keys, **options)


def get_db():
    """The database; the first call in a process makes sure every index exists."""
    extensions = current_app.extensions
    if not extensions["kyb.indexed"]:
        ensure_indexes(extensions["kyb.db"])
        extensions["kyb.indexed"] = True
    return extensions["kyb.db"]


def ping():
    get_db().command("ping")


def init_app(app):
    client, database = connect(app.config["MONGODB_URI"], app.config["MONGODB_TIMEOUT_MS"],
                               metrics.mongo_listeners(app))
    app.extensions["kyb.mongo"] = client
    app.extensions["kyb.db"] = database
    app.extensions["kyb.indexed"] = False
