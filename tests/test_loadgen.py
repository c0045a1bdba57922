"""The load generator (bench/loadgen.py, run by k8s/components/loadgenerator): it loads a
real frontend for a few seconds and reports requests and no failures; it says so by its
exit status when the target is down or answers errors; its users sign in at a real
Keycloak by filling in the login form the frontend sends them to, as browsers do; and
the Job runs it from the frontend image with exactly the settings it reads, at the
browser addresses the stack's sign-in expects, sent to Services that exist.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hamcrest import assert_that, contains_string, equal_to, greater_than, has_entries, has_items

from bench import loadgen
from tests.servers import free_port
from tests.stack import AppServer, frontend_settings
from tests.test_container_command import dockerfile, final_stage
from tests.test_k8s_consistency import data_of, env_values, service_for
from tests.test_k8s_tools import render

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "loadgen.py"


def run_loadgen(**settings):
    """The script as the Job runs it: (exit status, its JSON report)."""
    env = {"PATH": "/usr/bin:/bin", "LOADGEN_DURATION_SECONDS": "2", "LOADGEN_USERS": "2", "LOADGEN_RATE": "0",
           **settings}
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert lines, f"no report; stderr:\n{result.stderr}"
    return result.returncode, json.loads(lines[-1])


def test_a_run_against_a_real_frontend_reports_requests_and_no_failures(frontend_server, journal):
    status, report = run_loadgen(LOADGEN_TARGET=frontend_server.url, LOADGEN_WRITE_SHARE="0.2")

    assert_that(report, has_entries(failures=0, requests=greater_than(0), errors=equal_to({})))
    assert_that(list(report["actions"]), has_items("GET /", "GET /healthz", "GET /days", "GET /week",
                                                   "GET /backlog", "GET /notes", "GET /stats", "POST /backlog"))
    assert_that(status, equal_to(0))


def test_a_target_that_is_down_makes_it_exit_non_zero():
    status, report = run_loadgen(LOADGEN_TARGET=f"http://127.0.0.1:{free_port()}", LOADGEN_WAIT_SECONDS="1")

    assert_that(report["error"], contains_string("does not answer"))
    assert_that(status, equal_to(2))


def test_failing_requests_make_it_exit_non_zero(backend_server):
    # The backend answers /healthz but none of the frontend's pages.
    status, report = run_loadgen(LOADGEN_TARGET=backend_server.url, LOADGEN_WRITE_SHARE="0")

    assert_that(report["failures"], greater_than(0))
    assert_that(report["errors"], has_entries({"HTTP 404": greater_than(0)}))
    assert_that(status, equal_to(1))


# -- signing in like a browser ----------------------------------------------------------

@pytest.fixture(scope="module")
def frontend_signing_in(keycloak, signed_in_backend, redis_server, tmp_path_factory):
    """The frontend under gunicorn, signing users in at the test Keycloak, before a backend
    that trusts Keycloak's tokens only."""
    server = AppServer("frontend", frontend_settings(
        redis_server, BACKEND_URL=signed_in_backend.url, AUTH_DEV_USER="", OIDC_ISSUER=keycloak.issuer,
        OIDC_CLIENT_ID=keycloak.frontend_client_id, OIDC_CLIENT_SECRET=keycloak.frontend_client_secret,
        LOG_LEVEL="WARNING"), tmp_path_factory.mktemp("frontend-signing-in") / "frontend.log")
    yield server
    server.stop()


def test_its_users_sign_in_at_keycloak_and_load_the_signed_in_pages(frontend_signing_in, keycloak):
    status, report = run_loadgen(LOADGEN_TARGET=frontend_signing_in.url, LOADGEN_WRITE_SHARE="0.2",
                                 LOADGEN_USERNAME="ann", LOADGEN_PASSWORD=keycloak.users["ann"])

    assert_that(report, has_entries(failures=0, requests=greater_than(0), errors=equal_to({}),
                                    sign_ins={"signed in": 2, "not asked": 0}))
    assert_that(list(report["actions"]), has_items("sign-in", "GET /", "GET /stats", "POST /backlog"))
    assert_that(status, equal_to(0))


def test_a_refused_password_fails_the_run(frontend_signing_in):
    status, report = run_loadgen(LOADGEN_TARGET=frontend_signing_in.url, LOADGEN_USERNAME="ann",
                                 LOADGEN_PASSWORD="not-anns-password")

    assert_that(report["actions"]["sign-in"], has_entries(failures=2))
    assert_that(list(report["errors"]), has_items(contains_string("signing in as ann was refused")))
    assert_that(status, equal_to(1))


def test_its_users_can_be_where_browsers_are_and_reach_the_frontend_at_another_address(frontend_signing_in,
                                                                                       keycloak):
    # As in the cluster: the browser address is not where this process reaches the frontend,
    # and the sign-in only works if the frontend sees the browser address as its Host.
    browser_address = f"http://localhost:{free_port()}"
    status, report = run_loadgen(LOADGEN_TARGET=browser_address,
                                 LOADGEN_CONNECT_TO=f"{browser_address}={frontend_signing_in.url}",
                                 LOADGEN_USERNAME="ann", LOADGEN_PASSWORD=keycloak.users["ann"],
                                 LOADGEN_WRITE_SHARE="0")

    assert_that(report, has_entries(failures=0, sign_ins=has_entries({"signed in": 2})))
    assert_that(status, equal_to(0))


def test_a_frontend_that_asks_for_no_sign_in_is_loaded_signed_out(frontend_server, journal):
    status, report = run_loadgen(LOADGEN_TARGET=frontend_server.url, LOADGEN_USERNAME="ann",
                                 LOADGEN_PASSWORD="ann-password")

    assert_that(report, has_entries(failures=0, sign_ins={"signed in": 0, "not asked": 2}))
    assert_that(status, equal_to(0))


# -- the Job ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendering():
    """The stack with the load generator component, as `kubectl kustomize` renders it."""
    return render("loadgenerator")


def job_container(rendering):
    return rendering.named("Job", "loadgenerator")["spec"]["template"]["spec"]["containers"][0]


def job_env(rendering):
    container = job_container(rendering)
    values = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            values |= data_of(rendering.named("ConfigMap", source["configMapRef"]["name"]))
        else:
            values |= data_of(rendering.named("Secret", source["secretRef"]["name"]))
    return values | {var["name"]: var["value"] for var in container.get("env", [])}


def test_the_job_runs_the_script_that_the_frontend_image_copies(rendering):
    container = job_container(rendering)
    stage = final_stage(dockerfile("frontend"))

    assert_that(container["image"], equal_to("kyb-frontend:0.1.0"))
    assert_that(container["command"], equal_to(["python", "bench/loadgen.py"]))
    assert_that(stage["copies"], has_items(("bench/loadgen.py", "bench/loadgen.py")))


def test_the_job_sets_exactly_the_settings_the_script_reads(rendering):
    assert_that(sorted(job_env(rendering)), equal_to(sorted(loadgen.SETTINGS)))


def test_the_job_is_where_browsers_are_and_reaches_the_frontend_and_keycloak_through_their_services(rendering):
    env, keycloak = job_env(rendering), env_values(rendering, "keycloak")
    connect_to = dict(pair.split("=", 1) for pair in env["LOADGEN_CONNECT_TO"].split(","))

    assert_that(env["LOADGEN_TARGET"], equal_to(keycloak["KYB_FRONTEND_URL"]))
    assert_that(sorted(connect_to), equal_to(sorted([keycloak["KYB_FRONTEND_URL"], keycloak["KC_HOSTNAME"]])))
    for origin, name in ((keycloak["KYB_FRONTEND_URL"], "frontend"), (keycloak["KC_HOSTNAME"], "keycloak")):
        service, port = service_for(rendering, connect_to[origin])
        assert_that(service["metadata"]["name"] if service else None, equal_to(name))
        assert_that([p["port"] for p in service["spec"]["ports"]], has_items(port))
