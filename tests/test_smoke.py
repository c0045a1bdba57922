"""`make smoke` (scripts/smoke.py) against the real local stack, so the script itself is proven;
and with a token against a backend that trusts Keycloak's tokens only, as on Kubernetes."""
import os
import subprocess
import sys
from pathlib import Path

from hamcrest import assert_that, contains_string, equal_to

ROOT = Path(__file__).resolve().parents[1]


def smoke(url, token=None):
    """scripts/smoke.py against `url`, with KYB_TOKEN set to `token` (or not set)."""
    env = {key: value for key, value in os.environ.items() if key != "KYB_TOKEN"}
    return subprocess.run([sys.executable, "scripts/smoke.py", url], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env | ({"KYB_TOKEN": token} if token else {}))


def test_the_smoke_script_passes_against_the_local_stack(backend_server):
    run = smoke(backend_server.url)

    assert_that((run.returncode, run.stderr[-2000:]), equal_to((0, run.stderr[-2000:])))


def test_the_smoke_script_passes_with_a_token_where_only_tokens_are_trusted(signed_in_backend, keycloak):
    run = smoke(signed_in_backend.url, keycloak.token("ann")["access_token"])

    assert_that((run.returncode, run.stderr[-2000:]), equal_to((0, run.stderr[-2000:])))


def test_the_smoke_script_asks_for_a_token_where_only_tokens_are_trusted(signed_in_backend):
    run = smoke(signed_in_backend.url)

    assert_that(run.returncode, equal_to(1))
    assert_that(run.stderr, contains_string("set KYB_TOKEN"))
