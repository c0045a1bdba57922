#!/usr/bin/env bash
# Start the whole stack locally: Keycloak, FerretDB and redis-server (unless MONGODB_URI /
# REDIS_URL point elsewhere), then the backend and the frontend under gunicorn; the web UI
# signs users in at that Keycloak. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${KYB_CACHE:-$HOME/.cache/kyb}"
FERRETDB_PORT="${FERRETDB_PORT:-27018}"
REDIS_PORT="${REDIS_PORT:-6380}"
BACKEND_PORT="${BACKEND_PORT:-8000}"
FRONTEND_PORT="${FRONTEND_PORT:-8080}"
KEYCLOAK_PORT="${KEYCLOAK_PORT:-8180}"
KEYCLOAK_MANAGEMENT_PORT="${KEYCLOAK_MANAGEMENT_PORT:-9180}"
mkdir -p var/ferretdb var/redis var/log

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap stop INT TERM EXIT

# Keycloak first: it is the slowest to start (its state stays in var/keycloak).
scripts/setup-keycloak.sh --start var/keycloak "$KEYCLOAK_PORT" "$KEYCLOAK_MANAGEMENT_PORT" \
  >var/log/keycloak.log 2>&1 &
keycloak_pid=$!
pids+=($keycloak_pid)

wait_port() {  # port name
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start on port $1; see var/log/$2.log" >&2
  exit 1
}

if [ -z "${MONGODB_URI:-}" ]; then
  "$CACHE/ferretdb-v1.24.2/ferretdb" --handler=sqlite --sqlite-url="file:$PWD/var/ferretdb/" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --telemetry=disable --debug-addr=- \
    --log-level=warn --state-dir=var/ferretdb >var/log/ferretdb.log 2>&1 &
  pids+=($!)
  wait_port "$FERRETDB_PORT" ferretdb
  export MONGODB_URI="mongodb://127.0.0.1:$FERRETDB_PORT/kyb"
fi
# Redis: the backend's cache (none with REDIS_URL set empty) and the web UI's sessions.
if [ -z "${REDIS_URL:-}" ]; then
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --maxmemory 128mb --maxmemory-policy allkeys-lru >var/log/redis.log 2>&1 &
  pids+=($!)
  wait_port "$REDIS_PORT" redis
  sessions_url="redis://127.0.0.1:$REDIS_PORT/1"
  [ -n "${REDIS_URL+set}" ] || export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
else
  sessions_url="$REDIS_URL"
fi

scripts/setup-keycloak.sh --wait "$KEYCLOAK_PORT" "$keycloak_pid" ||
  { echo "keycloak did not start; see var/log/keycloak.log" >&2; exit 1; }
export OIDC_ISSUER="http://127.0.0.1:$KEYCLOAK_PORT/realms/kyb"

# The web UI sends Keycloak's tokens; the local backend also trusts X-User-Id (a development
# setting) so that curl, `make smoke` and Postman's development mode work without a token.
# Each app's workers share their metrics in a directory of its own (curl localhost:PORT/metrics).
PORT="$BACKEND_PORT" AUTH_DEV_USER_HEADER="${AUTH_DEV_USER_HEADER:-true}" PROMETHEUS_MULTIPROC_DIR=var/metrics/backend \
  .venv/bin/gunicorn -c config/gunicorn.conf.py "backend:create_app()" &
pids+=($!)
wait_port "$BACKEND_PORT" backend
# The client secret is the realm file's, as Keycloak imported it.
PORT="$FRONTEND_PORT" BACKEND_URL="http://127.0.0.1:$BACKEND_PORT" REDIS_URL="$sessions_url" \
  PROMETHEUS_MULTIPROC_DIR=var/metrics/frontend OIDC_CLIENT_SECRET="${KYB_FRONTEND_CLIENT_SECRET:-kyb-dev-frontend-secret}" \
  .venv/bin/gunicorn -c config/gunicorn.conf.py "frontend:create_app()" &
pids+=($!)
wait_port "$FRONTEND_PORT" frontend

cat <<MSG

kyb is running (Ctrl-C stops everything):
  web UI        http://127.0.0.1:$FRONTEND_PORT/
                sign in as ann / ann-password, or bob / bob-password (an admin)
  Keycloak      http://127.0.0.1:$KEYCLOAK_PORT/admin (admin/admin; realm kyb)
  backend API   http://127.0.0.1:$BACKEND_PORT/api/v1/days
  health        http://127.0.0.1:$BACKEND_PORT/readyz
  MongoDB       $MONGODB_URI
  Redis         ${REDIS_URL:-(disabled)}
MSG
wait -n "${pids[@]}"
echo "a process of the stack exited; stopping the rest" >&2
exit 1
