"""The observability component (k8s/components/observability): Prometheus may scrape each
app's metrics port and nothing shows that port to the outside, traces go to the collector,
and the Grafana dashboard ships in a ConfigMap that Grafana's sidecar finds. (The component
also passes every check that tests/test_k8s_tools.py, tests/test_k8s_consistency.py and
tests/test_control_plane_apply.py run on each variant.)"""
import json

import pytest
from hamcrest import assert_that, empty, equal_to, has_entries, has_items

from tests.test_k8s_consistency import APPS, containers, env_values, labels_match, served_paths
from tests.test_k8s_tools import K8S, patched_copy, render

COMPONENT = K8S / "components" / "observability"
MONITORING = {"kubernetes.io/metadata.name": "observability"}
PANELS = ("Traffic", "Errors", "p95 latency per route", "Cache hit ratio", "MongoDB p95 latency by command",
          "Flag version per pod")


@pytest.fixture(scope="module")
def served():
    return {app: served_paths(app) for app in APPS}


def admits(rule, port):
    """A NetworkPolicy ingress rule lets pods of the monitoring namespace reach `port`."""
    peers = rule.get("from")
    from_monitoring = not peers or any(
        "namespaceSelector" in peer and labels_match(peer["namespaceSelector"], MONITORING)
        and not peer.get("podSelector", {}).get("matchLabels") for peer in peers)
    to_port = not rule.get("ports") or any(p.get("port") in (port["name"], port["containerPort"])
                                           for p in rule["ports"])
    return from_monitoring and to_port


def scrape_problems(rendering, served):
    """Each app's pods ask to be scraped (prometheus.io annotations) on their metrics port at a
    path the app serves, the app answers there (METRICS_PORT), a NetworkPolicy admits the
    monitoring namespace to that port, and no Service (so no Ingress) reaches it."""
    problems = []
    for app in APPS:
        template = rendering.named("Deployment", app)["spec"]["template"]
        annotations = template["metadata"].get("annotations", {})
        port = next((p for c in containers(template) for p in c.get("ports", []) if p.get("name") == "metrics"), None)
        if annotations.get("prometheus.io/scrape") != "true":
            problems.append(f"{app}: pods are not marked for scraping")
        if port is None or annotations.get("prometheus.io/port") != str(port["containerPort"]):
            problems.append(f"{app}: prometheus.io/port is not the metrics container port")
            continue
        if annotations.get("prometheus.io/path") not in served[app]:
            problems.append(f"{app}: prometheus.io/path is not a path {app} serves")
        if env_values(rendering, app).get("METRICS_PORT") != str(port["containerPort"]):
            problems.append(f"{app}: METRICS_PORT is not the metrics container port")
        if not any(labels_match(policy["spec"]["podSelector"], template["metadata"]["labels"]) and admits(rule, port)
                   for policy in rendering.of_kind("NetworkPolicy") if "Ingress" in policy["spec"]["policyTypes"]
                   for rule in policy["spec"].get("ingress", [])):
            problems.append(f"{app}: no NetworkPolicy admits the namespace observability to port metrics")
        for service in rendering.of_kind("Service"):
            if any(p.get("targetPort") in ("metrics", port["containerPort"]) for p in service["spec"]["ports"]):
                problems.append(f"Service {service['metadata']['name']} exposes the metrics port of {app}")
    return problems


def test_prometheus_may_scrape_each_app_on_its_metrics_port_only(served):
    assert_that(scrape_problems(render("observability"), served), empty())


def test_without_the_component_no_pod_asks_to_be_scraped(served):
    assert_that(scrape_problems(render("default"), served), equal_to(
        [problem for app in APPS for problem in (f"{app}: pods are not marked for scraping",
                                                 f"{app}: prometheus.io/port is not the metrics container port")]))


def test_a_scrape_the_network_policies_do_not_admit_is_reported(tmp_path, served):
    broken = patched_copy(tmp_path, "components/observability/network-policies.yaml",
                          "          kubernetes.io/metadata.name: observability\n    ports:\n    - protocol: TCP\n"
                          "      port: metrics",
                          "          kubernetes.io/metadata.name: monitoring\n    ports:\n    - protocol: TCP\n"
                          "      port: metrics")

    assert_that(scrape_problems(render("observability", broken), served), equal_to(
        [f"{app}: no NetworkPolicy admits the namespace observability to port metrics" for app in APPS]))


def test_a_service_that_exposes_the_metrics_port_is_reported(tmp_path, served):
    broken = patched_copy(tmp_path, "base/frontend.yaml", "    targetPort: http\n", "    targetPort: metrics\n")

    assert_that(scrape_problems(render("observability", broken), served),
                has_items("Service frontend exposes the metrics port of frontend"))


def test_each_app_sends_its_traces_under_its_service_name_to_a_collector_it_may_reach():
    rendering = render("observability")
    for app in APPS:
        values = env_values(rendering, app)
        template = rendering.named("Deployment", app)["spec"]["template"]
        assert_that(values, has_entries(OTEL_SERVICE_NAME=f"kyb-{app}",
                                        OTEL_EXPORTER_OTLP_ENDPOINT="http://jaeger.observability:4318"))
        egress = [rule for policy in rendering.of_kind("NetworkPolicy")
                  if labels_match(policy["spec"]["podSelector"], template["metadata"]["labels"])
                  for rule in policy["spec"].get("egress", [])]
        assert any(any("namespaceSelector" in peer and labels_match(peer["namespaceSelector"], MONITORING)
                       for peer in rule.get("to", []))
                   and {"port": 4318, "protocol": "TCP"} in rule.get("ports", []) for rule in egress), \
            f"{app} may not reach the collector"


def test_the_grafana_dashboard_ships_in_a_configmap_grafanas_sidecar_finds():
    dashboard = render("observability").named("ConfigMap", "kyb-grafana-dashboard")
    source = (COMPONENT / "grafana" / "kyb-dashboard.json").read_text()

    assert_that(dashboard["metadata"]["labels"], has_entries(grafana_dashboard="1"))
    assert_that(dashboard["data"]["kyb-dashboard.json"], equal_to(source))
    titles = [panel["title"] for panel in json.loads(source)["panels"]]
    assert_that(titles, has_items(*PANELS))
