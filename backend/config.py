"""Settings of the backend: the only place that reads the environment.

Every variable the backend understands is listed in SETTINGS with its default.
The Kubernetes manifests set exactly these names (a test checks both ways).
"""
import os

MIB = 1024 * 1024

# name -> (default, parser)
SETTINGS = {
    "MONGODB_URI": ("mongodb://127.0.0.1:27017/kyb", str),
    "MONGODB_TIMEOUT_MS": ("2000", int),
    "REDIS_URL": ("redis://127.0.0.1:6379/0", str),
    "REDIS_TIMEOUT_MS": ("50", int),
    "CACHE_TTL_SECONDS": ("300", int),
    # Values each process keeps in memory (0: none); Redis pub/sub keeps them correct.
    "NEAR_CACHE_ENTRIES": ("1000", int),
    "RATE_LIMIT": ("600 per minute", str),
    "DEFAULT_USER": ("demo", str),
    # Sign-in: tokens must come from this issuer for this audience; keys from the JWKS URL
    # (default: Keycloak's, under the issuer). The manifests set AUTH_DEV_USER_HEADER false.
    "OIDC_ISSUER": ("", str),
    "OIDC_AUDIENCE": ("kyb-backend", str),
    "OIDC_JWKS_URL": ("", str),
    "AUTH_DEV_USER_HEADER": ("false", lambda v: v.lower() in ("1", "true", "yes")),
    "MAX_IMPORT_BYTES": (str(8 * MIB), int),
    "FLAGS_FILE": ("config/flags.json", str),
    # Metrics (see backend/metrics.py): METRICS_PORT, when set, is the only port that serves
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
