#!/usr/bin/env bash
# Run every test. Under CI=true a test that cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
# A cold build of the test control plane takes about 10 minutes on 2 cores: it runs in the
# background (niced) while the other tests run, and the control-plane tests wait for it.
# Warm, this is a quick check.
if ! bash scripts/setup-control-plane.sh --check; then
  log="${KYB_CACHE:-$HOME/.cache/kyb}/control-plane-build.log"
  echo "test: building the control plane in the background (log: $log)"
  mkdir -p "$(dirname "$log")"
  nohup bash scripts/setup-control-plane.sh >"$log" 2>&1 &
fi
pytest=(.venv/bin/python -m pytest -p no:cacheprovider -ra)
if [ $# -gt 0 ]; then
  exec "${pytest[@]}" "$@"
fi
# The control-plane tests spend most of their time waiting for the API server's controllers
# (a namespace takes ~15 s to go): they run in a second pytest alongside the others, which
# also lets a cold build finish meanwhile. Its report follows the main one.
control_plane=(tests/test_control_plane_apply.py tests/test_control_plane_flags.py)
"${pytest[@]}" "${control_plane[@]}" >test-artifacts/control-plane-tests.log 2>&1 &
control_plane_pid=$!
status=0
"${pytest[@]}" "${control_plane[@]/#/--ignore=}" || status=$?
control_plane_status=0
wait "$control_plane_pid" || control_plane_status=$?
echo
echo "=== the control-plane tests (test-artifacts/control-plane-tests.log) ==="
cat test-artifacts/control-plane-tests.log
[ "$status" -ne 0 ] && exit "$status"
exit "$control_plane_status"
