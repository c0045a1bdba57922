#!/usr/bin/env bash
# Install the offline check tools (requirements-checks.txt) into a venv of their own,
# named by the file's hash: a changed pin gets a fresh venv, an unchanged one costs
# nothing. scripts/setup.sh runs this; the Makefile exports KYB_CHECKS_BIN from
# `scripts/setup-checks.sh --print-bin`, and tests/test_k8s_tools.py computes the same
# path when it is unset.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
requirements="$root/requirements-checks.txt"
digest="$(sha256sum "$requirements" | cut -c1-12)"
venv="${KYB_CACHE:-$HOME/.cache/kyb}/venv-checks-$digest"

if [ "${1:-}" = --print-bin ]; then
    echo "$venv/bin"
    exit 0
fi

# The marker is written last, so an install that was cut short is done again.
if [ ! -f "$venv/.installed" ]; then
    echo "setup-checks: installing check tools into $venv" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --requirement "$requirements" >&2
    "$venv/bin/pip" check >&2
    touch "$venv/.installed"
fi
