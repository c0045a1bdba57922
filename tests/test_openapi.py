"""The OpenAPI document: it matches the routes, and schemathesis finds nothing against the live backend."""
import re
import subprocess
import sys
from pathlib import Path

from hamcrest import assert_that, equal_to, has_key

from backend.openapi import spec

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


def served_operations(app):
    # Static files, the HTML page that shows the spec and Prometheus's /metrics are not part of the API.
    return {(rule.rule.replace("<", "{").replace(">", "}"), method.lower())
            for rule in app.url_map.iter_rules() if rule.endpoint not in ("static", "docs.api_docs", "metrics.metrics")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def documented_operations(document):
    return {(path, method) for path, item in document["paths"].items() for method in item}


def test_every_served_route_is_documented_and_every_documented_route_is_served(app):
    assert_that(documented_operations(spec(app)), equal_to(served_operations(app)))


def test_a_route_added_without_a_description_is_caught(app):
    app.add_url_rule("/api/v1/undocumented", "undocumented", lambda: "")
    assert served_operations(app) - documented_operations(spec(app)) == {("/api/v1/undocumented", "get")}


def test_the_spec_is_served_as_openapi_3_1(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert_that(document["openapi"], equal_to("3.1.0"))
    assert_that(document["components"]["schemas"], has_key("Problem"))


def test_every_error_response_is_problem_json(app):
    for path, item in spec(app)["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (path, method, status)


def test_schemathesis_finds_no_failure_against_the_live_backend(signed_in_backend, keycloak):
    backend_server = signed_in_backend
    token = keycloak.token("ann")["access_token"]
    ARTIFACTS.mkdir(exist_ok=True)
    # One worker: with two threads, hypothesis's ast.parse calls (describing its filters) now
    # and then met CPython 3.11's AST recursion-depth race (python/cpython#106905) and the
    # run failed with "SystemError: AST constructor recursion depth mismatch".
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(ROOT / "schemathesis.toml"),
         "run", f"{backend_server.url}/api/v1/openapi.json", "--max-examples", "15",
         "--seed", "20261125", "--workers", "1", "--no-shrink", "--header", f"Authorization: Bearer {token}",
         "--report", "junit", "--report-junit-path", str(ARTIFACTS / "schemathesis.xml")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    summary = "\n".join(run.stdout.splitlines()[-30:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    generated = re.search(r"(\d+) generated", run.stdout)
    print(f"schemathesis: {generated.group(0) if generated else summary}")


def test_the_docs_page_shows_the_spec_with_vendored_swagger_ui(client):
    page = client.get("/api/docs")
    assert_that(page.status_code, equal_to(200))
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css", "/static/docs.js"):
        assert asset in page.get_data(as_text=True)
        assert client.get(asset).status_code == 200, asset
    assert "script-src" not in page.headers["Content-Security-Policy"]  # 'self' only: no inline script


def test_the_vendored_swagger_ui_is_the_one_the_lockfile_pins():
    import json

    lock = json.loads((ROOT / "package-lock.json").read_text())
    installed = ROOT / "node_modules" / "swagger-ui-dist"
    assert_that(json.loads((installed / "package.json").read_text())["version"],
                equal_to(lock["packages"]["node_modules/swagger-ui-dist"]["version"]))
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert (ROOT / "backend" / "static" / "swagger-ui" / name).read_bytes() == (installed / name).read_bytes(), name
