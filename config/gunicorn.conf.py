"""gunicorn settings shared by the backend and frontend images and `make run`.

Read by gunicorn itself (`gunicorn -c config/gunicorn.conf.py ...`); only
process-level knobs live here, application settings are in each app's config.py.
"""
import os

bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
# The apps answer /metrics on this port only (their METRICS_PORT), which no Service exposes.
if os.environ.get("METRICS_PORT"):
    bind.append(f"0.0.0.0:{os.environ['METRICS_PORT']}")
# gunicorn also reads WEB_CONCURRENCY itself; stated here so the default is visible.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
# No preload_app: each worker imports the app and runs create_app after the fork, so what
# starts a thread (the trace exporter) or opens a connection belongs to that worker alone.
threads = 4
timeout = 30
# Kubernetes sends SIGTERM after the preStop pause; in-flight requests get this long.
graceful_timeout = 20
keepalive = 5
accesslog = None  # the apps log each request themselves, as JSON
errorlog = "-"
loglevel = "info"
# gunicorn 23+ opens a control socket under $HOME; containers run read-only and need none.
control_socket_disable = True


def on_starting(server):
    """prometheus_client's multiprocess mode keeps a file per worker in PROMETHEUS_MULTIPROC_DIR
    and a scrape sums them all: start from an empty directory, so a restarted server does not
    add up the workers of its last run."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    """A worker is gone: its in-flight gauge no longer counts (its counters still do)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
