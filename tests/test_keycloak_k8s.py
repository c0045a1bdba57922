"""The Keycloak component (k8s/components/keycloak) renders on top of k8s/base, passes the
offline tools and the stack's own consistency checks, runs the realm of
config/keycloak/kyb-realm.json and the Keycloak version that scripts/setup-keycloak.sh pins.
No cluster is needed (the tools: tests/test_k8s_tools.py).
"""
import functools
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hamcrest import assert_that, empty, equal_to, greater_than, has_entries, has_item, has_items, is_not

from tests.test_k8s_consistency import (containers, data_of, hardening_problems, network_paths,
                                        reference_problems, service_problems)
from tests.test_k8s_tools import K8S, KUBERNETES_VERSIONS, ROOT, Rendering, checkov, kustomize, parse_yaml, validate

COMPONENT = K8S / "components" / "keycloak"
REALM_FILE = ROOT / "config" / "keycloak" / "kyb-realm.json"
SETUP = ROOT / "scripts" / "setup-keycloak.sh"


def pinned_version():
    return re.search(r"^KEYCLOAK_VERSION=(\S+)$", SETUP.read_text(), re.M)[1]


@functools.lru_cache(maxsize=None)
def render_with_keycloak():
    """k8s/base with the component, as k8s/kustomization.yaml lists it."""
    with tempfile.TemporaryDirectory() as work:
        relative = os.path.relpath(K8S, work)
        Path(work, "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n- {relative}/base\ncomponents:\n- {relative}/components/keycloak\n")
        text = kustomize(work)
    return Rendering(text, parse_yaml(text))


def keycloak_container(rendering):
    template = rendering.named("Deployment", "keycloak")["spec"]["template"]
    return next(c for c in containers(template) if c["name"] == "keycloak")


def container_env(rendering, container):
    """Every env var the container gets, with its value, from env and envFrom."""
    values = {}
    for source in container.get("envFrom", []):
        kind, ref = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        values |= data_of(rendering.named(kind, ref["name"]))
    values |= {var["name"]: var["value"] for var in container.get("env", []) if "value" in var}
    return values


def test_the_realm_in_the_component_is_config_keycloak_kyb_realm_json():
    assert (COMPONENT / "kyb-realm.json").read_bytes() == REALM_FILE.read_bytes(), \
        "k8s/components/keycloak/kyb-realm.json differs: cp config/keycloak/kyb-realm.json k8s/components/keycloak/"


def test_the_component_renders_into_the_kyb_namespace_with_the_realm_configmap():
    rendering = render_with_keycloak()
    realm = next(doc for doc in rendering.of_kind("ConfigMap") if doc["metadata"]["name"].startswith("keycloak-realm-"))
    volumes = rendering.named("Deployment", "keycloak")["spec"]["template"]["spec"]["volumes"]

    for doc in rendering.docs:
        if doc["kind"] != "Namespace":
            assert_that(doc["metadata"], has_entries(namespace="kyb"), doc["metadata"]["name"])
    assert_that(json.loads(realm["data"]["kyb-realm.json"]), equal_to(json.loads(REALM_FILE.read_text())))
    assert_that([v.get("configMap", {}).get("name") for v in volumes], has_item(realm["metadata"]["name"]))


def test_the_image_is_the_keycloak_version_the_tests_run():
    version = pinned_version()
    template = render_with_keycloak().named("Deployment", "keycloak")["spec"]["template"]

    for container in containers(template, init=True):
        assert_that(container["image"], equal_to(f"quay.io/keycloak/keycloak:{version}"))
    assert_that(template["metadata"]["labels"]["app.kubernetes.io/version"], equal_to(version))
    assert f"keycloak:{version}" in (ROOT / "docs" / "keycloak.md").read_text()


def test_keycloak_imports_the_realm_and_probes_its_health_on_the_management_port():
    rendering = render_with_keycloak()
    container = keycloak_container(rendering)
    env = container_env(rendering, container)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    management = next(p for p in container["ports"] if p["name"] == "management")

    assert_that(container["args"], has_items("start", "--import-realm"))
    assert_that(mounts["/opt/keycloak/data/import"], has_entries(readOnly=True))
    assert_that(env, has_entries(KC_HEALTH_ENABLED="true", KC_HTTP_ENABLED="true", KC_DB="dev-file",
                                 KC_HOSTNAME_BACKCHANNEL_DYNAMIC="true"))
    assert_that(management["containerPort"], equal_to(9000))
    for kind, path in (("startupProbe", "/health/started"), ("livenessProbe", "/health/live"),
                       ("readinessProbe", "/health/ready")):
        assert_that(container[kind]["httpGet"], has_entries(path=path, port="management"))


def test_every_placeholder_of_the_realm_file_is_given_to_keycloak():
    rendering = render_with_keycloak()
    env = container_env(rendering, keycloak_container(rendering))
    placeholders = set(re.findall(r"\$\{([A-Z0-9_]+):[^}]*\}", REALM_FILE.read_text()))

    assert_that(placeholders, equal_to({"KYB_FRONTEND_CLIENT_SECRET", "KYB_FRONTEND_URL"}))
    for name in placeholders:
        assert env.get(name), f"the realm file reads {name}, which the Keycloak container does not get"
    assert_that(env, has_entries(KC_BOOTSTRAP_ADMIN_USERNAME=is_not(empty()),
                                 KC_BOOTSTRAP_ADMIN_PASSWORD=is_not(empty())))
    assert re.fullmatch(r"https?://[^/]+", env["KC_HOSTNAME"]), env["KC_HOSTNAME"]


def test_the_component_passes_the_stacks_own_checks():
    rendering = render_with_keycloak()

    assert_that(service_problems(rendering), empty())
    assert_that(reference_problems(rendering), empty())
    assert_that(hardening_problems(rendering), empty())


def test_browsers_frontend_and_backend_reach_keycloak_and_keycloak_reaches_no_one():
    ingress, egress = network_paths(render_with_keycloak())

    assert_that(ingress, has_items(("world", "keycloak", "http"), ("frontend", "keycloak", "http"),
                                   ("backend", "keycloak", "http")))
    assert_that(egress, has_items(("frontend", "keycloak", "http"), ("backend", "keycloak", "http")))
    assert_that([path for path in ingress if path[1:] == ("keycloak", "management")], empty())
    assert_that({(target, port) for source, target, port in egress if source == "keycloak"},
                equal_to({("kube-dns", "53/UDP"), ("kube-dns", "53/TCP")}))


def test_the_keycloak_service_is_reachable_from_browsers_on_a_fixed_node_port():
    service = render_with_keycloak().named("Service", "keycloak")

    assert_that(service["spec"]["type"], equal_to("NodePort"))
    assert_that([p["name"] for p in service["spec"]["ports"]], equal_to(["http"]))
    assert_that(service["spec"]["ports"][0]["nodePort"], greater_than(29999))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict_accepts_the_component(version, tmp_path):
    result = validate(render_with_keycloak(), version, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing_in_the_component(tmp_path):
    report = checkov(render_with_keycloak(), tmp_path)

    failed = [f"{check['check_id']} {check['resource']}: {check['check_name']}"
              for check in report["results"]["failed_checks"]]
    assert_that(failed, empty())
    assert_that(report["summary"], has_entries(parsing_errors=0, passed=greater_than(0)))
