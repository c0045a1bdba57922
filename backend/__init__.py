"""kyb backend: a JSON API over the work journal (MongoDB, with Redis as a cache)."""
import sys

import click
from flask import Flask

from . import api, cache, cli, config, db, docs, errors, flags, health, identity, logs, metrics, ratelimit, tracing


def create_app(test_config=None):
    """Build the app; settings come from the environment, then from test_config."""
    app = Flask(__name__)
    app.config.from_mapping(config.load())
    if test_config:
        app.config.update(test_config)
    # Werkzeug answers 413 for any body over this before a view reads it.
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_IMPORT_BYTES"]
    app.json.sort_keys = False
    # Under the flask CLI stdout carries the command's output (an export), so logs go to stderr.
    in_cli = click.get_current_context(silent=True) is not None
    logs.setup(app.config["LOG_LEVEL"], sys.stderr if in_cli else None)
    logs.init_app(app)  # first, so every request has its id before anything can refuse it
    metrics.init_app(app)  # next, so refused requests are counted and timed too
    tracing.init_app(app)  # before db: pymongo is traced in the clients made after this only
    db.init_app(app)
    cache.init_app(app)
    flags.init_app(app)
    identity.init_app(app)
    ratelimit.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(docs.bp)
    return app
