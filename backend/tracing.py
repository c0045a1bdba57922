"""OpenTelemetry traces of requests, MongoDB commands and Redis calls, exported over OTLP.

On exactly when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise no tracer, exporter or
instrumentation is even imported. The OTEL_* variables are read by the SDK itself (the endpoint,
OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_PYTHON_FLASK_EXCLUDED_URLS, ...):
the one exception to config.py being the only reader of the environment.

The exporter batches spans in a thread. create_app runs in each gunicorn worker after
the fork (config/gunicorn.conf.py does not preload the app), so each worker starts its
own provider and thread, once per process. A `traceparent` header (W3C Trace Context,
sent by the frontend's instrumented requests) makes the backend's spans part of the
frontend's trace.
"""
import os

SERVICE_NAME = "kyb-backend"
_provider = None


def start(provider=None):
    """Trace this process's MongoDB and Redis calls into `provider` (by default one that
    exports to the OTLP endpoint); the first call of a process decides."""
    global _provider
    if _provider is None:
        from opentelemetry import trace
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        if provider is None:
            provider = _otlp_provider()
            trace.set_tracer_provider(provider)
        # Both patch the client libraries for the whole process: MongoClients made after this,
        # every Redis client.
        PymongoInstrumentor().instrument(tracer_provider=provider)
        RedisInstrumentor().instrument(tracer_provider=provider)
        _provider = provider
    return _provider


def _otlp_provider():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def span_ids():
    """(trace id, span id) in hex of the span active here, for log lines; None without one."""
    if _provider is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def init_app(app):
    """Trace the app's requests when tracing is on (configured, or started by a test)."""
    if _provider is None and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        start()
    if _provider is not None:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor.instrument_app(app, tracer_provider=_provider)
