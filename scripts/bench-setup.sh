#!/usr/bin/env bash
# What `make bench` needs beyond `make setup` (and `make test` does not): Debian's wrk,
# and the bench tools (requirements-bench.txt: Locust, py-spy, matplotlib) in a venv of
# their own named by that file's hash, so the project's .venv stays as it is. Named
# bench-setup.sh, not setup-*.sh, so that scripts/setup.sh does not run it.
#   scripts/bench-setup.sh              install; idempotent, instant when done
#   scripts/bench-setup.sh --print-bin  the venv's bin directory
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
requirements="$root/requirements-bench.txt"
digest="$(sha256sum "$requirements" | cut -c1-12)"
venv="${KYB_CACHE:-$HOME/.cache/kyb}/venv-bench-$digest"

if [ "${1:-}" = --print-bin ]; then
    echo "$venv/bin"
    exit 0
fi

if ! command -v wrk >/dev/null; then
    echo "bench-setup: installing wrk from Debian" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

# The marker is written last, so an install that was cut short is done again.
if [ ! -f "$venv/.installed" ]; then
    echo "bench-setup: installing the bench tools into $venv" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    PIP_CACHE_DIR="${KYB_CACHE:-$HOME/.cache/kyb}/pip" "$venv/bin/pip" install --quiet --disable-pip-version-check \
        --requirement "$requirements" >&2
    "$venv/bin/pip" check >&2
    touch "$venv/.installed"
fi
