#!/usr/bin/env bash
# Run every test. Under CI=true a test that cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
