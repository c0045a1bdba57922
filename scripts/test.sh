#!/usr/bin/env bash
# Run every test. Under CI=true a test that cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
# A cold build of the test control plane takes about 10 minutes on 2 cores: it runs in the
# background (niced) while the other tests run, and the control-plane tests, which pytest
# runs last (tests/conftest.py), wait for it. Warm, this is a quick check.
if ! bash scripts/setup-control-plane.sh --check; then
  log="${KYB_CACHE:-$HOME/.cache/kyb}/control-plane-build.log"
  echo "test: building the control plane in the background (log: $log)"
  mkdir -p "$(dirname "$log")"
  nohup bash scripts/setup-control-plane.sh >"$log" 2>&1 &
fi
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
