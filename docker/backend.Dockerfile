# Image of the backend JSON API. Build from the repository root:
#   docker build -f docker/backend.Dockerfile -t kyb-backend:0.1.0 .

# The Python tag is exact so that a rebuild gives the same interpreter; it matches the
# Python the tests run on, so the container command test proves this image's command.
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --requirement /tmp/requirements.txt

FROM python:3.11.7-slim-bookworm
# PROMETHEUS_MULTIPROC_DIR: where gunicorn's workers share their metrics (as k8s/base/backend.env).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/kyb-metrics
RUN groupadd --system --gid 10001 kyb \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kyb
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY config/gunicorn.conf.py config/gunicorn.conf.py
# Default flags for a plain `docker run`; on Kubernetes FLAGS_FILE points at the ConfigMap.
COPY config/flags.json config/flags.json
COPY backend backend
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "backend:create_app()"]
