# Image of the frontend (server-rendered pages). Build from the repository root:
#   docker build -f docker/frontend.Dockerfile -t kyb-frontend:0.1.0 .

# The Python tag is exact so that a rebuild gives the same interpreter; it matches the
# Python the tests run on, so the container command test proves this image's command.
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --requirement /tmp/requirements.txt

FROM python:3.11.7-slim-bookworm
# PROMETHEUS_MULTIPROC_DIR: where gunicorn's workers share their metrics (as k8s/base/frontend.env).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/kyb-metrics
RUN groupadd --system --gid 10001 kyb \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kyb
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY config/gunicorn.conf.py config/gunicorn.conf.py
COPY frontend frontend
# The load generator's script (k8s/components/loadgenerator runs it in this image).
COPY bench/loadgen.py bench/loadgen.py
USER 10001:10001
EXPOSE 8080
CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "frontend:create_app()"]
