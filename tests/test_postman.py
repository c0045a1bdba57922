"""The Postman collection (postman/), run by newman against a real backend.

Two ways the collection names the caller: development mode (no Keycloak, header
X-User-Id) against the stack's backend, and token mode, where the collection gets its
own access token from a real Keycloak and the backend accepts nothing else. Each run
keeps newman's JSON report under test-artifacts/ (CI keeps it as an artifact) and must
end with every request made and no assertion failed.
"""
import json
import subprocess
import uuid
from pathlib import Path



ROOT = Path(__file__).resolve().parents[1]
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "kyb.postman_collection.json"
LOCAL_ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"
ARTIFACTS = ROOT / "test-artifacts"
NEWMAN_TIMEOUT = 300


def requests_in(collection):
    """The requests of a collection, folders walked in order."""
    return [leaf for item in collection["item"] for leaf in (requests_in(item) if "item" in item else [item])]


def run_newman(base_url, report_name, *env_vars):
    """newman over the whole collection; its JSON report (also kept in test-artifacts/)."""
    assert NEWMAN.exists(), "node_modules/.bin/newman is missing: run `make setup` (scripts/setup-frontend.sh)"
    ARTIFACTS.mkdir(exist_ok=True)
    report_path = ARTIFACTS / report_name
    report_path.unlink(missing_ok=True)
    argv = [str(NEWMAN), "run", str(COLLECTION), "-e", str(LOCAL_ENVIRONMENT), "--env-var", f"baseUrl={base_url}"]
    for variable in env_vars:
        argv += ["--env-var", variable]
    argv += ["--reporters", "cli,json", "--reporter-json-export", str(report_path),
             "--color", "off", "--disable-unicode", "--timeout-request", "120000"]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=NEWMAN_TIMEOUT)
    assert run.returncode == 0, f"newman exited with {run.returncode}:\n{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
    report = json.loads(report_path.read_text())["run"]
    stats = report["stats"]
    failures = [f"{f['source'].get('name')}: {f['error'].get('test') or ''} {f['error']['message']}"
                for f in report["failures"]]
    assert failures == [], "\n".join(failures)
    assert stats["assertions"]["failed"] == 0 and stats["requests"]["failed"] == 0, stats
    # One execution per request of the collection (the report lists a request twice when its
    # pre-request script sent one of its own, e.g. for the token).
    executions = list({e["cursor"]["position"]: e for e in report["executions"]}.values())
    items = requests_in(json.loads(COLLECTION.read_text()))
    assert [e["item"]["name"] for e in executions] == [item["name"] for item in items], \
        "every request of the collection ran, in order"
    # Every request checks something of its own, besides the collection's check against the spec.
    untested = [e["item"]["name"] for e in executions if len(e.get("assertions", [])) < 2]
    assert untested == [], f"requests without their own assertions: {untested}"
    report["executions"] = executions
    print(f"newman ({report_name}): {stats['requests']['total']} requests, "
          f"{stats['assertions']['total']} assertions, {stats['assertions']['failed']} failed")
    return report


def sent_headers(execution):
    return {header["key"].lower(): header["value"] for header in execution["request"]["header"]}


def anonymous(execution):
    """Requests the collection sends with "No Auth" (probes, the no-credentials check)."""
    return execution["item"].get("request", {}).get("auth", {}).get("type") == "noauth"


def test_the_collection_passes_in_development_mode(backend_server):
    report = run_newman(backend_server.url, "newman-report.json",
                        "keycloakUrl=", f"userId=postman-{uuid.uuid4().hex[:8]}")
    for execution in report["executions"]:
        headers = sent_headers(execution)
        assert "authorization" not in headers, execution["item"]["name"]
        assert ("x-user-id" in headers) != anonymous(execution), execution["item"]["name"]


def test_the_collection_signs_in_at_keycloak_by_itself(signed_in_backend, keycloak):
    report = run_newman(signed_in_backend.url, "newman-report-token.json",
                        f"keycloakUrl={keycloak.url}", f"realm={keycloak.realm}",
                        f"clientId={keycloak.cli_client_id}", "username=ann",
                        f"password={keycloak.users['ann']}", "requireSignIn=true")
    for execution in report["executions"]:
        headers = sent_headers(execution)
        assert "x-user-id" not in headers, execution["item"]["name"]
        if anonymous(execution):
            assert "authorization" not in headers, execution["item"]["name"]
        else:
            assert headers.get("authorization", "").startswith("Bearer ey"), execution["item"]["name"]
