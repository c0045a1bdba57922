"""The rendered manifests hang together and match the apps: Services reach pods,
references resolve, probes hit paths the apps serve, env vars are exactly the ones the
apps read, NetworkPolicies open exactly the paths the stack needs, and every workload
is locked down. Each check returns the problems it finds, so the negative tests can
show that a broken copy of k8s/ makes it speak up.
"""
import base64
import importlib
import json
import re
import runpy
from urllib.parse import urlsplit

import pytest
from hamcrest import (assert_that, contains_string, empty, equal_to, greater_than, has_item, has_items,
                      is_not, starts_with)
from pymongo import MongoClient

from tests.test_k8s_tools import K8S, ROOT, VARIANTS, patched_copy, render

WORKLOADS = ("Deployment", "StatefulSet", "Job", "DaemonSet")
APPS = ("backend", "frontend")
# The probe paths of the apps' contract, used until an app's create_app exists.
CONTRACT_PATHS = {"/healthz", "/readyz"}
APP_PROBES = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
FLAGS_DIR = "/etc/kyb/flags"
# (from, to, port name): the connections the stack needs, and so the only ones allowed.
NEEDED_PATHS = {
    ("frontend", "backend", "http"),
    ("backend", "mongodb", "mongodb"),
    ("backend", "redis", "redis"),
    ("frontend", "redis", "redis"),
    ("frontend", "keycloak", "http"),
    ("backend", "keycloak", "http"),
}
HA_PATHS = {
    ("mongodb", "mongodb", "mongodb"),
    ("mongodb-replica-set-init", "mongodb", "mongodb"),
}
# The paths an optional component adds: the load generator browses the frontend and signs in at Keycloak.
COMPONENT_PATHS = {
    "loadgenerator": {("loadgenerator", "frontend", "http"), ("loadgenerator", "keycloak", "http")},
}
# Set by the observability component for the OpenTelemetry SDK, which reads them itself.
OTEL_ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_PYTHON_FLASK_EXCLUDED_URLS"}
# Open to every source (browsers, NodePort, ingress controller): the UI and the sign-in pages.
BROWSER_PORTS = (("frontend", "http"), ("keycloak", "http"))
WORLD, DNS = "world", "kube-dns"
DNS_PORTS = ("53/UDP", "53/TCP")
NAMESPACE_LABELS = {"kubernetes.io/metadata.name": "kyb"}
DNS_NAMESPACE_LABELS = {"kubernetes.io/metadata.name": "kube-system"}
DNS_POD_LABELS = {"k8s-app": "kube-dns"}


# -- reading the rendered objects ------------------------------------------------------

def pod_templates(rendering):
    """(workload, pod template) for every workload."""
    return [(doc, doc["spec"]["template"]) for doc in rendering.of_kind(*WORKLOADS)]


def app_of(template):
    return template["metadata"]["labels"]["app.kubernetes.io/name"]


def containers(template, init=False):
    spec = template["spec"]
    return spec["containers"] + (spec.get("initContainers", []) if init else [])


def port_names(container):
    return {port.get("name") for port in container.get("ports", [])}


def labels_match(selector, labels):
    """A label selector (matchLabels/matchExpressions, or a plain map) against labels."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if not {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}[operator]:
            return False
    return True


def data_of(doc):
    """A ConfigMap's or Secret's values, decoded."""
    if doc["kind"] == "Secret":
        values = {key: base64.b64decode(value).decode() for key, value in doc.get("data", {}).items()}
        return values | doc.get("stringData", {})
    return doc.get("data", {})


def env_values(rendering, app):
    """Every env var the app's container gets, with its value, from env and envFrom."""
    container = next(c for c in containers(rendering.named("Deployment", app)["spec"]["template"])
                     if c["name"] == app)
    values = {}
    for source in container.get("envFrom", []):
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        ref = source["configMapRef"] if "configMapRef" in source else source["secretRef"]
        values |= {source.get("prefix", "") + key: value
                   for key, value in data_of(rendering.named(kind, ref["name"])).items()}
    for var in container.get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"].get("configMapKeyRef") or var["valueFrom"]["secretKeyRef"]
            kind = "ConfigMap" if "configMapKeyRef" in var["valueFrom"] else "Secret"
            values[var["name"]] = data_of(rendering.named(kind, ref["name"]))[ref["key"]]
    return values


def service_for(rendering, url):
    """The Service a URL's host names (`name` or `name.kyb...`), and the URL's port."""
    parts = urlsplit(url)
    return rendering.named("Service", parts.hostname.split(".")[0]), parts.port


def served_paths(app):
    """GET paths without parameters that the app serves: from its Flask url_map once
    `create_app` exists, else the contract's probe paths."""
    module = importlib.import_module(app)
    if not hasattr(module, "create_app"):
        return CONTRACT_PATHS
    flask_app = module.create_app({"TESTING": True})
    try:
        rules = flask_app.url_map.iter_rules()
        return {rule.rule for rule in rules if "GET" in rule.methods and not rule.arguments}
    finally:
        for extension in flask_app.extensions.values():
            if isinstance(extension, MongoClient):
                extension.close()


def expected_env(app, variant="default"):
    config = importlib.import_module(f"{app}.config")
    return set(config.ENV_VARS) | {"PORT", "WEB_CONCURRENCY"} | (OTEL_ENV if variant == "observability" else set())


# -- the checks ----------------------------------------------------------------------

def service_problems(rendering):
    """Every Service selects a pod template, and each of its ports names a container port there."""
    problems = []
    templates = [template for _, template in pod_templates(rendering)]
    for service in rendering.of_kind("Service"):
        name, selector = service["metadata"]["name"], service["spec"].get("selector")
        matching = [t for t in templates if selector and labels_match(selector, t["metadata"]["labels"])]
        if not matching:
            problems.append(f"Service {name}: selector {selector} matches no pod template")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort")
            if not isinstance(target, str):
                problems.append(f"Service {name}: port {port['port']} does not target a named container port")
                continue
            for template in matching:
                if not any(target in port_names(c) for c in containers(template)):
                    problems.append(f"Service {name}: no container port named {target} in {app_of(template)}")
    return problems


def reference_problems(rendering):
    """Every ConfigMap, Secret, ServiceAccount, Service, Role and scale target named exists."""
    problems = []

    def need(kind, name, where, key=None):
        doc = rendering.named(kind, name)
        if doc is None:
            problems.append(f"{where}: {kind} {name} does not exist")
        elif key is not None and key not in data_of(doc):
            problems.append(f"{where}: {kind} {name} has no key {key}")

    for workload, template in pod_templates(rendering):
        where = f"{workload['kind']} {workload['metadata']['name']}"
        spec = template["spec"]
        if "serviceAccountName" not in spec:
            problems.append(f"{where}: runs as the default ServiceAccount")
        else:
            need("ServiceAccount", spec["serviceAccountName"], where)
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                need("ConfigMap", volume["configMap"]["name"], where)
            if "secret" in volume:
                need("Secret", volume["secret"]["secretName"], where)
        for container in containers(template, init=True):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    need("ConfigMap", source["configMapRef"]["name"], where)
                if "secretRef" in source:
                    need("Secret", source["secretRef"]["name"], where)
            for var in container.get("env", []):
                value_from = var.get("valueFrom", {})
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if field in value_from:
                        need(kind, value_from[field]["name"], where, value_from[field]["key"])
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes and not any(
                        claim["metadata"]["name"] == mount["name"]
                        for claim in workload["spec"].get("volumeClaimTemplates", [])):
                    problems.append(f"{where}: mounts an undefined volume {mount['name']}")
        if workload["kind"] == "StatefulSet":
            service = rendering.named("Service", workload["spec"]["serviceName"])
            if service is None or service["spec"].get("clusterIP") != "None":
                problems.append(f"{where}: no headless Service {workload['spec']['serviceName']}")
    for binding in rendering.of_kind("RoleBinding"):
        where = f"RoleBinding {binding['metadata']['name']}"
        need(binding["roleRef"]["kind"], binding["roleRef"]["name"], where)
        for subject in binding["subjects"]:
            need(subject["kind"], subject["name"], where)
    for role in rendering.of_kind("Role"):
        for rule in role["rules"]:
            for name in rule.get("resourceNames", []):
                for resource in rule["resources"]:
                    kind = {"configmaps": "ConfigMap", "secrets": "Secret"}[resource]
                    need(kind, name, f"Role {role['metadata']['name']}")
    for autoscaler in rendering.of_kind("HorizontalPodAutoscaler"):
        target = autoscaler["spec"]["scaleTargetRef"]
        need(target["kind"], target["name"], f"HorizontalPodAutoscaler {autoscaler['metadata']['name']}")
    for budget in rendering.of_kind("PodDisruptionBudget"):
        selector = budget["spec"]["selector"]
        if not any(labels_match(selector, t["metadata"]["labels"]) for _, t in pod_templates(rendering)):
            problems.append(f"PodDisruptionBudget {budget['metadata']['name']}: selects no pod template")
    for ingress in rendering.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = rendering.named("Service", backend["name"])
                names = {p.get("name") for p in service["spec"]["ports"]} if service else set()
                if backend["port"].get("name") not in names:
                    problems.append(f"Ingress {ingress['metadata']['name']}: no Service port {backend}")
    return problems


def probe_problems(rendering, served):
    """Long-running containers have all three probes, on ports they name; the apps'
    HTTP probes ask for paths the app serves (`served`: app -> paths)."""
    problems = []
    for workload, template in pod_templates(rendering):
        if workload["kind"] == "Job":
            continue
        app = app_of(template)
        for container in containers(template):
            where = f"{workload['kind']} {workload['metadata']['name']}/{container['name']}"
            for kind in APP_PROBES:
                probe = container.get(kind)
                if probe is None:
                    problems.append(f"{where}: no {kind}")
                    continue
                check = probe.get("httpGet") or probe.get("tcpSocket")
                if check is not None and check["port"] not in port_names(container):
                    problems.append(f"{where}: {kind} port {check['port']} is not a named container port")
                if app in served:
                    path = probe.get("httpGet", {}).get("path")
                    if path != APP_PROBES[kind]:
                        problems.append(f"{where}: {kind} asks for {path}, not {APP_PROBES[kind]}")
                    if path not in served[app]:
                        problems.append(f"{where}: {kind} asks for {path}, which {app} does not serve")
    return problems


def env_problems(rendering, app, expected):
    """The env vars set on the app's container are exactly `expected`."""
    names = set(env_values(rendering, app))
    return ([f"{app}: {name} is read by {app}.config but not set" for name in sorted(expected - names)]
            + [f"{app}: {name} is set but {app}.config does not read it" for name in sorted(names - expected)])


def network_paths(rendering):
    """What the NetworkPolicies let through, on each end: (ingress, egress), each a set of
    (from, to, port) over the stack's pods, the world, and the cluster DNS."""
    templates = {app_of(t): t for _, t in pod_templates(rendering)}
    pods = {app: (t["metadata"]["labels"], NAMESPACE_LABELS) for app, t in templates.items()}
    ports = {app: {f"{p.get('name')}": p for c in containers(t) for p in c.get("ports", [])}
             for app, t in templates.items()}
    policies = rendering.of_kind("NetworkPolicy")

    def peer_matches(peer, target):
        if target == WORLD:
            return "ipBlock" in peer
        labels, namespace = (DNS_POD_LABELS, DNS_NAMESPACE_LABELS) if target == DNS else pods[target]
        if "namespaceSelector" in peer:
            if not labels_match(peer["namespaceSelector"], namespace):
                return False
        elif namespace != NAMESPACE_LABELS:
            return False
        if "podSelector" not in peer and "namespaceSelector" not in peer:
            return False  # an ipBlock: not a pod
        return labels_match(peer.get("podSelector", {}), labels)

    def port_matches(rule, target, port):
        if not rule.get("ports"):
            return True
        if target == DNS:
            number, protocol = port.split("/")
            return any(str(p.get("port")) == number and p.get("protocol", "TCP") == protocol
                       for p in rule["ports"])
        container_port = ports[target][port]
        return any(p.get("port") in (container_port.get("name"), container_port["containerPort"])
                   and p.get("protocol", "TCP") == container_port.get("protocol", "TCP") for p in rule["ports"])

    def allowed(direction, selected, peer, port_owner, port):
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        governing = [p for p in policies if direction in p["spec"]["policyTypes"]
                     and labels_match(p["spec"]["podSelector"], pods[selected][0])]
        if not governing:
            return True
        return any((not rule.get(peers_key) or any(peer_matches(x, peer) for x in rule[peers_key]))
                   and port_matches(rule, port_owner, port)
                   for policy in governing for rule in policy["spec"].get(key, []))

    ingress = {(source, target, port) for target in pods for port in ports[target]
               for source in [*pods, WORLD] if allowed("Ingress", target, source, target, port)}
    destinations = [(target, port) for target in pods for port in ports[target]] + [(DNS, p) for p in DNS_PORTS]
    egress = {(source, target, port) for source in pods for target, port in destinations
              if allowed("Egress", source, target, target, port)}
    egress |= {(source, WORLD, "any") for source in pods if allowed_world_egress(policies, pods[source][0])}
    return ingress, egress


def allowed_world_egress(policies, labels):
    governing = [p for p in policies
                 if "Egress" in p["spec"]["policyTypes"] and labels_match(p["spec"]["podSelector"], labels)]
    return not governing or any(not rule.get("to") or any("ipBlock" in peer for peer in rule["to"])
                                for policy in governing for rule in policy["spec"].get("egress", []))


def network_problems(rendering, needed):
    """Each end of each needed path is open, and nothing else is: browsers may reach the
    frontend from anywhere, every pod may ask the cluster DNS."""
    pods = {app_of(t) for _, t in pod_templates(rendering)}
    ingress, egress = network_paths(rendering)
    expected_ingress = needed | {(source, *port) for port in BROWSER_PORTS for source in [*pods, WORLD]}
    expected_egress = needed | {(pod, DNS, port) for pod in pods for port in DNS_PORTS}
    return ([f"ingress not allowed: {path}" for path in sorted(expected_ingress - ingress)]
            + [f"ingress allowed but not needed: {path}" for path in sorted(ingress - expected_ingress)]
            + [f"egress not allowed: {path}" for path in sorted(expected_egress - egress)]
            + [f"egress allowed but not needed: {path}" for path in sorted(egress - expected_egress)])


def sign_in_problems(rendering):
    """No development sign-in on a cluster, and the frontend, the backend and Keycloak agree
    on the issuer and the frontend client's secret."""
    frontend, backend = env_values(rendering, "frontend"), env_values(rendering, "backend")
    keycloak = env_values(rendering, "keycloak")
    problems = []
    if frontend.get("AUTH_DEV_USER"):
        problems.append(f"frontend: AUTH_DEV_USER={frontend['AUTH_DEV_USER']} signs every visitor in")
    if backend.get("AUTH_DEV_USER_HEADER") != "false":
        problems.append("backend: AUTH_DEV_USER_HEADER is not false, X-User-Id would name the user")
    for app, values in (("frontend", frontend), ("backend", backend)):
        if values.get("OIDC_ISSUER") != f"{keycloak['KC_HOSTNAME']}/realms/kyb":
            problems.append(f"{app}: OIDC_ISSUER is not Keycloak's KC_HOSTNAME/realms/kyb")
    if frontend.get("OIDC_CLIENT_SECRET") != keycloak["KYB_FRONTEND_CLIENT_SECRET"]:
        problems.append("frontend: OIDC_CLIENT_SECRET is not the secret Keycloak imports")
    return problems


def hardening_problems(rendering):
    """Every workload is locked down, labelled, sized and stops gracefully."""
    problems = []
    for workload, template in pod_templates(rendering):
        where = f"{workload['kind']} {workload['metadata']['name']}"
        spec = template["spec"]
        labels = template["metadata"]["labels"]
        for label in ("name", "component", "version", "part-of", "managed-by"):
            if f"app.kubernetes.io/{label}" not in labels:
                problems.append(f"{where}: pod label app.kubernetes.io/{label} missing")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a ServiceAccount token")
        pod_security = spec.get("securityContext", {})
        if not (pod_security.get("runAsNonRoot") is True and pod_security.get("runAsUser", 0) >= 10000
                and pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault"):
            problems.append(f"{where}: pod securityContext is not non-root (uid >= 10000), RuntimeDefault seccomp")
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in containers(template, init=True):
            name = f"{where}/{container['name']}"
            security = container.get("securityContext", {})
            capabilities = security.get("capabilities", {})
            if not (security.get("allowPrivilegeEscalation") is False and security.get("readOnlyRootFilesystem") is True
                    and capabilities.get("drop") == ["ALL"] and not capabilities.get("add")):
                problems.append(f"{name}: securityContext is not locked down")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                if set(resources.get(bound, {})) != {"cpu", "memory"}:
                    problems.append(f"{name}: {bound} lack cpu or memory")
            if any("subPath" in mount for mount in container.get("volumeMounts", [])):
                problems.append(f"{name}: uses subPath (updates of the volume would not reach it)")
        for container in containers(template):
            name = f"{where}/{container['name']}"
            mounts = container.get("volumeMounts", [])
            if not any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in mounts):
                problems.append(f"{name}: no emptyDir at /tmp")
            if workload["kind"] == "Job":
                continue
            pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
            if not pause:
                problems.append(f"{name}: no preStop pause")
            elif spec.get("terminationGracePeriodSeconds", 30) <= pause:
                problems.append(f"{name}: terminationGracePeriodSeconds leaves no time after the preStop pause")
    return problems


# -- the checks hold for every variant ------------------------------------------------

@pytest.fixture(scope="module")
def served():
    return {app: served_paths(app) for app in APPS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_service_selects_pods_and_targets_a_named_port(variant):
    assert_that(service_problems(render(variant)), empty())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_referenced_object_exists(variant):
    assert_that(reference_problems(render(variant)), empty())


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_ask_for_paths_the_apps_serve(variant, served):
    assert_that(probe_problems(render(variant), served), empty())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("app", APPS)
def test_env_vars_set_are_exactly_those_the_app_reads(variant, app):
    assert_that(env_problems(render(variant), app, expected_env(app, variant)), empty())


@pytest.mark.parametrize("variant", VARIANTS)
def test_network_policies_open_exactly_the_needed_paths(variant):
    needed = NEEDED_PATHS | (HA_PATHS if variant == "ha" else set()) | COMPONENT_PATHS.get(variant, set())

    assert_that(network_problems(render(variant), needed), empty())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_workload_is_locked_down_labelled_sized_and_stops_gracefully(variant):
    assert_that(hardening_problems(render(variant)), empty())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_image_is_built_from_a_dockerfile_or_pinned_to_an_exact_version(variant):
    for _, template in pod_templates(render(variant)):
        for container in containers(template, init=True):
            image = container["image"]
            own = re.fullmatch(r"kyb-([a-z]+):(\d+\.\d+\.\d+)", image)
            if own:
                assert (ROOT / "docker" / f"{own[1]}.Dockerfile").exists(), f"no Dockerfile for {image}"
                assert_that(template["metadata"]["labels"]["app.kubernetes.io/version"], equal_to(own[2]))
            else:
                assert re.fullmatch(r"[a-z0-9][a-z0-9./-]*:\d+\.\d+\.\d+(-[a-z0-9]+)?", image), \
                    f"{image} is not pinned to an exact version"


# -- how the pieces connect -------------------------------------------------------------

@pytest.mark.parametrize("app", APPS)
def test_the_app_listens_on_the_port_its_service_targets(app):
    rendering = render("default")
    container = containers(rendering.named("Deployment", app)["spec"]["template"])[0]
    http = next(p for p in container["ports"] if p["name"] == "http")

    assert_that(env_values(rendering, app)["PORT"], equal_to(str(http["containerPort"])))


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_frontend_and_backend_urls_name_services_and_their_ports(variant):
    rendering = render(variant)
    urls = {"frontend": ["BACKEND_URL", "REDIS_URL", "OIDC_DISCOVERY_URL"], "backend": ["REDIS_URL"]}
    for app, names in urls.items():
        values = env_values(rendering, app)
        for name in names:
            service, port = service_for(rendering, values[name])
            assert service is not None, f"{name}={values[name]} names no Service"
            assert_that([p["port"] for p in service["spec"]["ports"]], has_item(port))


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_backend_logs_in_to_mongodb_as_the_app_user_the_database_creates(variant):
    rendering = render(variant)
    credentials = next(data_of(secret) for secret in rendering.of_kind("Secret")
                       if secret["metadata"]["name"].startswith("mongodb-credentials-"))
    uri = urlsplit(env_values(rendering, "backend")["MONGODB_URI"])
    hosts = [host.split(":")[0] for host in uri.netloc.rpartition("@")[2].split(",")]

    assert_that(uri.username, equal_to(credentials["app-username"]))
    assert_that(uri.password, equal_to(credentials["app-password"]))
    assert_that(uri.path, equal_to("/kyb"))
    for host in hosts:
        assert rendering.named("Service", host.split(".")[-1]) is not None, f"{host} is no MongoDB Service name"


def test_the_flags_configmap_is_config_flags_json_under_a_fixed_name():
    source = (ROOT / "config" / "flags.json").read_text()
    flags = render("default").named("ConfigMap", "kyb-flags")

    assert (K8S / "base" / "flags.json").read_text() == source, \
        "k8s/base/flags.json differs from config/flags.json: cp config/flags.json k8s/base/flags.json"
    assert flags is not None, "the flags ConfigMap must be named kyb-flags exactly (no hash suffix)"
    assert_that(json.loads(flags["data"]["flags.json"]), equal_to(json.loads(source)))


def test_the_backend_reads_flags_from_a_directory_mount():
    # The frontend asks the backend for flags (GET /api/v1/flags); only the backend mounts them.
    rendering = render("default")
    template = rendering.named("Deployment", "backend")["spec"]["template"]
    flags_volume = next(volume["name"] for volume in template["spec"]["volumes"]
                        if volume.get("configMap", {}).get("name") == "kyb-flags")
    mount = next(m for m in containers(template)[0]["volumeMounts"] if m["name"] == flags_volume)

    assert_that(mount["mountPath"], equal_to(FLAGS_DIR))
    assert_that(mount.get("subPath"), equal_to(None))
    assert_that(env_values(rendering, "backend")["FLAGS_FILE"], equal_to(f"{FLAGS_DIR}/flags.json"))


@pytest.mark.parametrize("app", APPS)
def test_settings_come_from_a_hashed_configmap(app):
    template = render("default").named("Deployment", app)["spec"]["template"]
    settings = [s["configMapRef"]["name"] for s in containers(template)[0]["envFrom"] if "configMapRef" in s]

    assert_that(settings, equal_to([settings[0]]))
    assert_that(settings[0], starts_with(f"{app}-settings-"))


@pytest.mark.parametrize("app", APPS)
def test_pods_get_time_for_the_prestop_pause_and_gunicorns_graceful_timeout(app):
    gunicorn = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    spec = render("default").named("Deployment", app)["spec"]["template"]["spec"]
    pause = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]

    assert_that(spec["terminationGracePeriodSeconds"], greater_than(pause + gunicorn["graceful_timeout"]))


def test_the_ha_overlay_runs_a_three_member_replica_set_that_the_backend_uses():
    rendering = render("ha")
    mongodb = rendering.named("StatefulSet", "mongodb")
    members = [f"mongodb-{i}.mongodb:27017" for i in range(mongodb["spec"]["replicas"])]
    args = containers(mongodb["spec"]["template"])[0]["args"]
    uri = urlsplit(env_values(rendering, "backend")["MONGODB_URI"])
    script = (K8S / "overlays" / "ha" / "initiate-replica-set.js").read_text()

    assert_that(mongodb["spec"]["replicas"], equal_to(3))
    assert_that(args, has_items("--replSet", "--keyFile"))
    replica_set = args[args.index("--replSet") + 1]
    assert_that(uri.netloc.rpartition("@")[2].split(","), equal_to(members))
    assert_that(uri.query, contains_string(f"replicaSet={replica_set}"))
    assert_that(json.loads(re.search(r"MEMBERS = (\[.*?\]);", script)[1]), equal_to(members))
    assert_that(script, contains_string(f'_id: "{replica_set}"'))
    assert_that(rendering.named("Job", "mongodb-replica-set-init"), is_not(None))


def test_the_ha_overlay_spreads_replicas_and_raises_the_autoscaler_bounds():
    default, ha = render("default"), render("ha")
    for name in ("backend", "frontend", "mongodb"):
        kind = "StatefulSet" if name == "mongodb" else "Deployment"
        spec = ha.named(kind, name)["spec"]["template"]["spec"]
        assert spec.get("topologySpreadConstraints"), f"{name} is not spread across nodes"
    for name in APPS:
        low = default.named("HorizontalPodAutoscaler", name)["spec"]
        high = ha.named("HorizontalPodAutoscaler", name)["spec"]
        assert_that(high["minReplicas"], greater_than(low["minReplicas"]))
        assert_that(high["maxReplicas"], greater_than(low["maxReplicas"]))


def test_the_images_the_manifests_run_are_built_by_the_makefile_and_the_docs():
    makefile = "\n".join(path.read_text() for path in [ROOT / "Makefile", *sorted((ROOT / "scripts").glob("*.sh"))])
    docs = (ROOT / "docs" / "kubernetes.md").read_text()
    images = {c["image"] for _, t in pod_templates(render("default")) for c in containers(t)
              if c["image"].startswith("kyb-")}

    assert_that(images, equal_to({"kyb-backend:0.1.0", "kyb-frontend:0.1.0"}))
    for image in images:
        dockerfile = f"docker/{image.split(':')[0].removeprefix('kyb-')}.Dockerfile"
        for text, where in ((makefile, "the Makefile (or a script it runs)"), (docs, "docs/kubernetes.md")):
            assert f"-t {image}" in text and f"-f {dockerfile}" in text, \
                f"{where} does not build {image} from {dockerfile}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_on_a_cluster_only_keycloaks_tokens_name_the_user(variant):
    assert_that(sign_in_problems(render(variant)), empty())


# -- a broken copy of k8s/ makes the checks speak up ----------------------------------

def test_a_service_selector_that_matches_nothing_is_reported(tmp_path):
    broken = patched_copy(tmp_path, "base/backend.yaml",
                          "  selector:\n    app.kubernetes.io/name: backend\n  ports:",
                          "  selector:\n    app.kubernetes.io/name: backnd\n  ports:")

    assert_that(service_problems(render("default", broken)), equal_to(
        ["Service backend: selector {'app.kubernetes.io/name': 'backnd'} matches no pod template"]))


def test_a_missing_env_var_is_reported(tmp_path):
    broken = patched_copy(tmp_path, "base/backend.env", "LOG_LEVEL=INFO\n", "")

    assert_that(env_problems(render("default", broken), "backend", expected_env("backend")),
                equal_to(["backend: LOG_LEVEL is read by backend.config but not set"]))


def test_an_env_var_the_app_does_not_read_is_reported(tmp_path):
    broken = patched_copy(tmp_path, "base/frontend.env", "LOG_LEVEL=INFO\n", "LOG_LEVEL=INFO\nLOG_FORMAT=json\n")

    assert_that(env_problems(render("default", broken), "frontend", expected_env("frontend")),
                equal_to(["frontend: LOG_FORMAT is set but frontend.config does not read it"]))


def test_a_probe_on_a_path_the_app_does_not_serve_is_reported(tmp_path, served):
    broken = patched_copy(tmp_path, "base/backend.yaml", "path: /readyz", "path: /ready")

    assert_that(probe_problems(render("default", broken), served),
                has_item(contains_string("/ready, which backend does not serve")))


def test_a_network_path_the_stack_does_not_need_is_reported(tmp_path):
    # Redis admitting every pod of the namespace, not just the backend.
    only_backend = "    - podSelector:\n        matchLabels:\n          app.kubernetes.io/name: backend\n"
    to_redis = "    ports:\n    - protocol: TCP\n      port: redis"
    broken = patched_copy(tmp_path, "base/network-policies.yaml",
                          only_backend + to_redis, "    - podSelector: {}\n" + to_redis)

    assert_that(network_problems(render("default", broken), NEEDED_PATHS),
                has_items("ingress allowed but not needed: ('keycloak', 'redis', 'redis')",
                          "ingress allowed but not needed: ('mongodb', 'redis', 'redis')"))


@pytest.mark.parametrize("file, old, new, problem", [
    ("base/frontend.env", "AUTH_DEV_USER=\n", "AUTH_DEV_USER=demo\n",
     "frontend: AUTH_DEV_USER=demo signs every visitor in"),
    ("base/backend.env", "AUTH_DEV_USER_HEADER=false\n", "AUTH_DEV_USER_HEADER=true\n",
     "backend: AUTH_DEV_USER_HEADER is not false, X-User-Id would name the user"),
])
def test_a_development_sign_in_on_the_cluster_is_reported(tmp_path, file, old, new, problem):
    broken = patched_copy(tmp_path, file, old, new)

    assert_that(sign_in_problems(render("default", broken)), equal_to([problem]))


def test_a_missing_network_path_is_reported(tmp_path):
    broken = patched_copy(tmp_path, "base/network-policies.yaml",
                          "          app.kubernetes.io/name: redis\n    ports:",
                          "          app.kubernetes.io/name: rediss\n    ports:")

    assert_that(network_problems(render("default", broken), NEEDED_PATHS),
                equal_to(["egress not allowed: ('frontend', 'redis', 'redis')"]))
