"""gunicorn settings shared by the backend and frontend images and `make run`.

Read by gunicorn itself (`gunicorn -c config/gunicorn.conf.py ...`); only
process-level knobs live here, application settings are in each app's config.py.
"""
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# gunicorn also reads WEB_CONCURRENCY itself; stated here so the default is visible.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
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
