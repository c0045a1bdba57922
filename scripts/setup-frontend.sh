#!/usr/bin/env bash
# Front-end packages from npm at the lockfile's versions (htmx, axe-core) into node_modules/.
# The app serves its own copy of htmx (frontend/static/vendor/, so images need no npm);
# tests/test_frontend_assets.py checks that copy is the locked package's file, and the
# browser tests load axe-core from node_modules. Fast when the lockfile has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp="node_modules/.kyb-lock-$(sha256sum package-lock.json | cut -c1-16)"
[ -f "$stamp" ] && exit 0

if ! command -v npm >/dev/null; then
  echo "setup-frontend: installing npm from Debian"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi
echo "setup-frontend: npm ci (htmx, axe-core)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
touch "$stamp"
