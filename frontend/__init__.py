"""kyb frontend: server-rendered pages over the backend's JSON API (HTTP only)."""
from flask import Flask

from . import auth, backend_client, config, errors, health, logs, markdown, metrics, security, sessions, tracing, views

# Uploads bigger than this are refused before a view reads them; the backend has its own limit.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024


def create_app(test_config=None):
    """Build the app; settings come from the environment, then from test_config."""
    app = Flask(__name__)
    app.config.from_mapping(config.load())
    if test_config:
        app.config.update(test_config)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        SESSION_COOKIE_NAME="kyb_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    logs.setup(app.config["LOG_LEVEL"])
    logs.init_app(app)
    metrics.init_app(app)  # next, so refused requests are counted and timed too
    tracing.init_app(app)
    sessions.init_app(app)
    backend_client.init_app(app)
    auth.init_app(app)  # before security: a signed-out POST goes to sign-in, not to a CSRF refusal
    security.init_app(app)
    errors.init_app(app)
    markdown.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(views.bp)
    return app
