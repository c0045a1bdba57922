#!/usr/bin/env bash
# Keycloak for `make run` and the tests: the server distribution
# org.keycloak:keycloak-quarkus-dist from Maven Central, unpacked once under
# ${KYB_CACHE:-~/.cache/kyb}/keycloak-VERSION/, run by a JDK 21+ found on the machine.
#
#   scripts/setup-keycloak.sh                    install; idempotent, instant when done
#                                                (scripts/setup.sh runs every setup-*.sh)
#   scripts/setup-keycloak.sh --installed        exit 0 when installed, 1 when not
#   scripts/setup-keycloak.sh --print-java-home  the JDK it runs Keycloak with
#   scripts/setup-keycloak.sh --wait HTTP_PORT PID [TIMEOUT]
#        wait until realm kyb answers on HTTP_PORT (exit 0), or PID exits or TIMEOUT
#        seconds (default 600) pass (exit 1)
#   scripts/setup-keycloak.sh --start DIR HTTP_PORT MANAGEMENT_PORT
#        run Keycloak in dev mode in the foreground (exec: signals reach it) on
#        127.0.0.1, with all its state (H2 database, import dir) in DIR, realm kyb
#        imported from config/keycloak/kyb-realm.json. tests/keycloak.py and
#        scripts/run.sh start it this way, so the options live only here.
#
# Installing also warms the server up once: it starts it in dev mode until realm kyb
# answers and keeps the result as a template (the dev-mode Quarkus build and an H2
# database with the realm imported). `--start` on an empty DIR copies that template,
# which skips the build (a minute or more) and the schema creation and realm import.
# The template is made again whenever the start options, the realm file or the JDK
# change. KYB_KEYCLOAK_COLD=1 makes `--start` ignore it (to measure a cold start).
set -euo pipefail

KEYCLOAK_VERSION=26.7.3
# The JDK: Temurin 25 where the machine has it, else the newest JDK >= 21 under
# /usr/lib/jvm, else JDK 17 (26.7.3 starts on it too, with a warning here). KYB_JAVA_HOME wins.
PREFERRED_JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${KYB_CACHE:-$HOME/.cache/kyb}"
base="$cache/keycloak-$KEYCLOAK_VERSION"
server="$base/server"
realm="$root/config/keycloak/kyb-realm.json"

java_major() {  # JAVA_HOME -> major version, from its `release` file
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null || true
}

java_home() {
  if [ -n "${KYB_JAVA_HOME:-}" ]; then echo "$KYB_JAVA_HOME"; return; fi
  if [ -x "$PREFERRED_JAVA_HOME/bin/java" ]; then echo "$PREFERRED_JAVA_HOME"; return; fi
  local best="" best_major=0 dir major
  for dir in /usr/lib/jvm/*/; do
    dir="${dir%/}"
    [ -x "$dir/bin/java" ] && [ ! -L "$dir" ] || continue
    major="$(java_major "$dir")"
    if [ -n "$major" ] && [ "$major" -gt "$best_major" ]; then best="$dir" best_major="$major"; fi
  done
  if [ "$best_major" -lt 17 ]; then
    echo "setup-keycloak: no JDK 17+ under /usr/lib/jvm; install one or set KYB_JAVA_HOME" >&2
    return 1
  fi
  [ "$best_major" -ge 21 ] || echo "setup-keycloak: only JDK $best_major found; Keycloak $KEYCLOAK_VERSION wants 21+" >&2
  echo "$best"
}

warm_key() {  # what the warm template depends on: how it starts, the realm, the JDK
  { declare -f start lay_out_home; cat "$realm"; echo "$KEYCLOAK_VERSION"; cat "$(java_home)/release"; } |
    sha256sum | cut -c1-12
}

# A Keycloak home in DIR: its own bin/kc.sh (kc.sh takes the home from its own path),
# lib/quarkus (what a dev-mode build rewrites) and data/; the rest links to the server.
lay_out_home() {
  local home="$1" warm="$base/warm-$(warm_key)"
  mkdir -p "$home/bin" "$home/lib" "$home/data/import"
  # A home made for another version (var/keycloak of `make run`) keeps its database,
  # which Keycloak migrates, but not its build.
  if [ "$(cat "$home/.keycloak-version" 2>/dev/null)" != "$KEYCLOAK_VERSION" ]; then
    rm -rf "$home/lib/quarkus"
  fi
  echo "$KEYCLOAK_VERSION" >"$home/.keycloak-version"
  cp "$server/bin/kc.sh" "$home/bin/kc.sh"
  cp "$server/lib/quarkus-run.jar" "$home/lib/quarkus-run.jar"
  local link
  for link in conf providers themes lib/lib lib/app; do ln -sfn "$server/$link" "$home/$link"; done
  if [ ! -d "$home/lib/quarkus" ]; then
    if [ -f "$warm/.complete" ] && [ -z "${KYB_KEYCLOAK_COLD:-}" ]; then
      echo "setup-keycloak: a new home from the warm template $(basename "$warm")" >&2
      cp -r "$warm/lib/quarkus" "$home/lib/quarkus"
      [ -d "$home/data/h2" ] || cp -r "$warm/data/h2" "$home/data/h2"
    else
      echo "setup-keycloak: a new home from the plain server (no warm template: this start builds and imports)" >&2
      cp -r "$server/lib/quarkus" "$home/lib/quarkus"
    fi
  fi
  cp "$realm" "$home/data/import/kyb-realm.json"
}

start() {
  local home="$1" http_port="$2" management_port="$3"
  if [ ! -f "$server/.installed" ]; then
    echo "setup-keycloak: Keycloak $KEYCLOAK_VERSION is not installed: run make setup" >&2
    exit 3
  fi
  mkdir -p "$home"
  home="$(cd "$home" && pwd)"
  lay_out_home "$home"
  JAVA_HOME="$(java_home)"
  export JAVA_HOME
  export JAVA_OPTS_KC_HEAP="${JAVA_OPTS_KC_HEAP:--Xms64m -Xmx512m}"
  # The master realm's first admin (admin console at /admin), for local use only.
  export KC_BOOTSTRAP_ADMIN_USERNAME="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}"
  export KC_BOOTSTRAP_ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}"
  # health-enabled is a build option: keep it the same everywhere, or every start rebuilds.
  # --hostname pins the issuer to http://127.0.0.1:PORT/realms/kyb, however Keycloak is
  # reached (http://localhost:PORT too): the apps and the tests check `iss` against it.
  exec "$home/bin/kc.sh" start-dev --import-realm --hostname="http://127.0.0.1:$http_port" \
    --http-host=127.0.0.1 --http-port="$http_port" --http-management-port="$management_port" \
    --health-enabled=true
}

answers() {  # URL -> whether it answers 200
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
}

# Wait until realm kyb answers on HTTP_PORT (0) or PID exits or TIMEOUT seconds pass (1).
wait_ready() {
  local http_port="$1" pid="$2" timeout="${3:-600}" began=$SECONDS
  while [ $((SECONDS - began)) -lt "$timeout" ]; do
    answers "http://127.0.0.1:$http_port/realms/kyb/.well-known/openid-configuration" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}

# Start a server in a scratch home until realm kyb answers, stop it, keep it as the template.
warm_up() {
  local key warm scratch http_port management_port pid ready=""
  key="$(warm_key)"
  warm="$base/warm-$key"
  [ -f "$warm/.complete" ] && return 0
  echo "setup-keycloak: warming Keycloak up once (dev-mode build and realm import; a few minutes cold)" >&2
  scratch="$base/warm-tmp-$$"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  read -r http_port management_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in sockets])')
  # A fresh home (no template of this key yet: the plain server's build, an empty database).
  # Only our settings: no KC_* from the caller's environment, the local admin as in `--start`.
  env $(env | sed -n 's/^\(KC_[A-Za-z0-9_]*\)=.*/-u \1/p') \
    bash "$0" --start "$scratch/home" "$http_port" "$management_port" >"$scratch/keycloak.log" 2>&1 &
  pid=$!
  wait_ready "$http_port" "$pid" 900 && ready=1
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -z "$ready" ]; then
    echo "setup-keycloak: Keycloak did not come up; its log:" >&2
    tail -n 40 "$scratch/keycloak.log" >&2
    rm -rf "$scratch"
    exit 1
  fi
  mkdir -p "$scratch/template/lib" "$scratch/template/data/h2"
  mv "$scratch/home/lib/quarkus" "$scratch/template/lib/quarkus"
  mv "$scratch/home/data/h2/keycloakdb.mv.db" "$scratch/template/data/h2/"
  mv "$scratch/keycloak.log" "$scratch/template/warm-up.log"
  touch "$scratch/template/.complete"
  rm -rf "$base"/warm-[0-9a-f]*   # templates of older keys
  mv "$scratch/template" "$warm"
  rm -rf "$scratch"
}

install() {
  mkdir -p "$base"
  if [ ! -f "$server/.installed" ]; then
    echo "setup-keycloak: downloading Keycloak $KEYCLOAK_VERSION (org.keycloak:keycloak-quarkus-dist, ~170 MB) with Maven" >&2
    local download
    download="$(mktemp -d "$base/download.XXXXXX")"
    # -C: fail on a checksum mismatch. Its output only when it fails.
    if ! mvn -q -B -C dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
        -DoutputDirectory="$download" >"$download/mvn.log" 2>&1; then
      cat "$download/mvn.log" >&2
      rm -rf "$download"
      exit 1
    fi
    if command -v unzip >/dev/null; then
      unzip -q "$download/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip" -d "$download"
    else  # Python's zipfile drops the modes: the scripts need theirs back
      python3 -m zipfile -e "$download/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip" "$download"
      chmod +x "$download/keycloak-$KEYCLOAK_VERSION"/bin/*.sh
    fi
    rm -rf "$server"
    mv "$download/keycloak-$KEYCLOAK_VERSION" "$server"
    rm -rf "$download"
    touch "$server/.installed"
  fi
  warm_up
}

case "${1:-}" in
  "") mkdir -p "$cache"
      exec 9>"$cache/keycloak.lock"
      flock 9   # concurrent setups (several work trees share the cache) take turns
      install ;;
  --installed) [ -f "$server/.installed" ] ;;
  --wait) [ $# -ge 3 ] || { echo "usage: $0 --wait HTTP_PORT PID [TIMEOUT_SECONDS]" >&2; exit 2; }
          wait_ready "$2" "$3" "${4:-600}" ;;
  --print-java-home) java_home ;;
  --start) [ $# -eq 4 ] || { echo "usage: $0 --start DIR HTTP_PORT MANAGEMENT_PORT" >&2; exit 2; }
           start "$2" "$3" "$4" ;;
  *) echo "usage: $0 [--installed | --print-java-home | --start DIR HTTP_PORT MANAGEMENT_PORT | --wait HTTP_PORT PID [TIMEOUT]]" >&2
     exit 2 ;;
esac
