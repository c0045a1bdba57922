"""Settings of the frontend: the only place that reads the environment.

Every variable the frontend understands is listed in SETTINGS with its default.
The Kubernetes manifests set exactly these names (a test checks both ways).
"""
import os

# name -> (default, parser)
SETTINGS = {
    "BACKEND_URL": ("http://127.0.0.1:8000", str),
    "BACKEND_TIMEOUT_MS": ("5000", int),
    "SESSION_COOKIE_SECURE": ("false", lambda v: v.lower() in ("1", "true", "yes")),
    # Sessions (their tokens among them) live in Redis, shared by every worker and replica;
    # the browser's cookie holds only a random id.
    "REDIS_URL": ("redis://127.0.0.1:6379/1", str),
    # Sign-in with Keycloak: OIDC_ISSUER is the issuer as browsers see it (the `iss` of every
    # token); the discovery document may be fetched from an in-cluster address instead
    # (default: under the issuer). The client secret comes from a Secret on Kubernetes.
    "OIDC_ISSUER": ("", str),
    "OIDC_DISCOVERY_URL": ("", str),
    "OIDC_CLIENT_ID": ("kyb-frontend", str),
    "OIDC_CLIENT_SECRET": ("", str),
    # Development and tests only (the manifests leave it empty): every visitor is this user,
    # named to the backend by X-User-Id (which it must accept: AUTH_DEV_USER_HEADER), no Keycloak.
    "AUTH_DEV_USER": ("", str),
    # Metrics (see frontend/metrics.py): METRICS_PORT, when set, is the only port that serves
    # /metrics (gunicorn listens on it too); PROMETHEUS_MULTIPROC_DIR is where gunicorn's
    # workers keep their values (prometheus_client reads it from the environment itself).
    # Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT is set: the OpenTelemetry SDK reads
    # the OTEL_* variables itself, the only ones the app reads outside this file.
    "METRICS_ENABLED": ("true", lambda v: v.lower() in ("1", "true", "yes")),
    "METRICS_PORT": ("", lambda v: int(v) if v else None),
    "PROMETHEUS_MULTIPROC_DIR": ("", str),
    "LOG_LEVEL": ("INFO", str),
}

ENV_VARS = tuple(SETTINGS)


def load(environ=None):
    """Read every setting from `environ` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    return {name: parse(environ.get(name, default)) for name, (default, parse) in SETTINGS.items()}
