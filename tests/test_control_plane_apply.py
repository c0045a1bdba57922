"""`kubectl apply -k` for real: every variant of k8s/ against a real kube-apiserver
(tests/control_plane.py), with the same kubectl binary as the offline checks.

For the default stack, each kustomize component (base + component, rendered in a
temporary kustomization) and the ha overlay, in client-side and server-side apply:
every object is accepted; a second apply changes nothing; `kubectl diff` is empty;
`kubectl delete` removes every object, the namespace included (the namespace
controller of kube-controller-manager finishes that). The controllers then turn the
workloads into ReplicaSets and Pods, which Pod Security admission ("restricted") must
admit. And a manifest that the offline schema check accepts but the API server
rejects is caught by `kubectl apply --dry-run=server`.
"""
import json
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hamcrest import (assert_that, contains_string, empty, equal_to, greater_than, has_entries, has_length,
                      is_not)

from tests.test_k8s_tools import K8S, patched_copy, tool, run as run_tool

# The control_plane fixture (conftest may register it too; once is enough).
pytest_plugins = ["tests.control_plane"]

NAMESPACE = "kyb"
GONE_SECONDS = 120


def components():
    """The optional components: those the default k8s/kustomization.yaml does not include already."""
    default = yaml.safe_load((K8S / "kustomization.yaml").read_text()).get("components", [])
    return sorted(path.parent.name for path in (K8S / "components").glob("*/kustomization.yaml")
                  if f"components/{path.parent.name}" not in default)


def touches_workloads(component):
    """Whether a component adds a workload or patches one (so its pods need the controllers' check)."""
    return any(re.search(r"^kind: (Deployment|StatefulSet|Job|DaemonSet)$", path.read_text(), re.M)
               for path in (K8S / "components" / component).glob("*.yaml"))


# What a user applies: the default stack, the stack with each optional component, the HA overlay.
VARIANTS = ["default", *(f"component:{name}" for name in components()), "ha"]
WORKLOAD_VARIANTS = ["default", *(f"component:{name}" for name in components() if touches_workloads(name)), "ha"]


class Variant:
    """A directory for `kubectl apply -k` and the objects `kubectl kustomize` renders from it."""

    def __init__(self, name, directory, control_plane):
        self.name, self.directory = name, Path(directory)
        result = control_plane.kubectl("kustomize", self.directory)
        assert result.returncode == 0, result.stderr
        self.text = result.stdout
        self.docs = [doc for doc in yaml.safe_load_all(self.text) if doc]

    def keys(self):
        return sorted(key(doc) for doc in self.docs)

    def of_kind(self, *kinds):
        return [doc for doc in self.docs if doc["kind"] in kinds]


def key(doc):
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def variant_directory(name, work):
    """The directory to apply for one variant; a component is rendered over the base in `work`."""
    if name == "default":
        return K8S
    if name == "ha":
        return K8S / "overlays" / "ha"
    component = name.split(":", 1)[1]
    relative = os.path.relpath(K8S, work)
    Path(work, "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n- {relative}\ncomponents:\n- {relative}/components/{component}\n")
    return Path(work)


@pytest.fixture
def variant(request, control_plane):
    with tempfile.TemporaryDirectory() as work:
        yield Variant(request.param, variant_directory(request.param, work), control_plane)


def live_objects(control_plane, variant):
    """The variant's objects as the API server has them, by key (absent ones left out)."""
    result = control_plane.kubectl("get", "-f", "-", "-o", "json", "--ignore-not-found", "--show-managed-fields",
                                   input=variant.text)
    assert result.returncode == 0, result.stderr
    if not result.stdout.strip():
        return {}
    return {key(item): item for item in json.loads(result.stdout)["items"]}


def wait_until_gone(control_plane, variant):
    """Every object of the variant, and the namespace, deleted for good (finalizers done)."""
    deadline = time.monotonic() + GONE_SECONDS
    while True:
        left = live_objects(control_plane, variant)
        namespace = control_plane.request(f"/api/v1/namespaces/{NAMESPACE}")[0]
        if not left and namespace == 404:
            return
        if time.monotonic() > deadline:
            phase = control_plane.kubectl("get", "namespace", NAMESPACE, "-o", "json").stdout
            pytest.fail(f"still there after {GONE_SECONDS} s: {sorted(left)}; namespace: {phase}")
        time.sleep(0.5)


def delete_namespace(control_plane):
    result = control_plane.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true",
                                   "--timeout=120s")
    assert result.returncode == 0, result.stderr


@pytest.fixture
def clean(control_plane):
    """No kyb namespace before the test, and none left after it, whatever happened."""
    delete_namespace(control_plane)
    yield
    delete_namespace(control_plane)


def applied_lines(output):
    return [line for line in output.splitlines() if line.strip()]


# Kinds whose objects only `kubectl apply` writes here (no controller updates them).
UNTOUCHED_BY_CONTROLLERS = ("Namespace", "ServiceAccount", "ConfigMap", "Secret", "Service", "Role", "RoleBinding",
                            "NetworkPolicy", "Ingress")


def manager_entries(item, manager):
    assert "managedFields" in item["metadata"], item["metadata"]
    return [entry for entry in item["metadata"].get("managedFields", []) if entry["manager"] == manager]


APPLY_MODES = {
    # mode: (extra flags, what the first apply prints, what a repeat prints, the field manager)
    "client-side": ((), "created", "unchanged", "kubectl-client-side-apply"),
    "server-side": (("--server-side", "--field-manager=kyb-test"), "serverside-applied", "serverside-applied",
                    "kyb-test"),
}


def kubectl_repatches(doc):
    """Why a repeated client-side apply of `doc` is printed `configured` although the API
    server writes nothing, or None. kubectl computes a three-way strategic merge patch
    and sends it whenever it is not empty; for these objects it never is:
    - a PodDisruptionBudget: policy/v1 `spec.selector` has patchStrategy `replace`, and
      kubectl puts a `replace` field into the patch without comparing it;
    - a StatefulSet with volumeClaimTemplates: an atomic list, which the server fills
      with defaults (apiVersion, kind, volumeMode, status), so it never equals the manifest;
    - a Secret whose `data` holds a base64 value with line breaks: kustomize's
      secretGenerator wraps base64 at 70 characters (a value of 53 bytes or more); the
      server keeps the decoded bytes and answers unwrapped base64.
    Each patch leaves the object as it was: no write, resourceVersion unchanged."""
    if doc["kind"] == "PodDisruptionBudget":
        return "PodDisruptionBudget selector is patchStrategy replace"
    if doc["kind"] == "StatefulSet" and doc["spec"].get("volumeClaimTemplates"):
        return "StatefulSet volumeClaimTemplates are defaulted by the server"
    if doc["kind"] == "Secret" and any("\n" in value for value in (doc.get("data") or {}).values()):
        return "Secret data is line-wrapped base64 (kustomize secretGenerator)"
    return None


def line_key(line, variant):
    """The key of the object an output line names: `kind.group/name applied` (apply) or
    `kind.group "name" deleted ...` (delete)."""
    first, _, rest = line.partition(" ")
    if "/" in first:
        resource, name = first.split("/", 1)
    else:
        resource, name = first, rest.split(" ", 1)[0].strip('"')
    kind = resource.split(".", 1)[0]
    matches = [key(doc) for doc in variant.docs if doc["kind"].lower() == kind and doc["metadata"]["name"] == name]
    assert_that(matches, has_length(1), line)
    return matches[0]


@pytest.mark.parametrize("mode", sorted(APPLY_MODES))
@pytest.mark.parametrize("variant", VARIANTS, indirect=True)
def test_apply_is_accepted_then_a_no_op_then_diff_is_empty_then_delete_removes_all(
        control_plane, variant, clean, mode):
    flags, first_word, repeat_word, manager = APPLY_MODES[mode]
    expected = variant.keys()
    assert_that(expected, has_length(greater_than(0)))

    first = control_plane.kubectl("apply", "-k", variant.directory, *flags)

    assert first.returncode == 0, first.stdout + first.stderr
    assert_that(sorted(line_key(line, variant) for line in applied_lines(first.stdout)), equal_to(expected))
    for line in applied_lines(first.stdout):
        assert line.endswith(f" {first_word}"), f"{line!r} in\n{first.stdout}"
    live = live_objects(control_plane, variant)
    assert_that(sorted(live), equal_to(expected))

    second = control_plane.kubectl("apply", "-k", variant.directory, *flags)

    assert second.returncode == 0, second.stdout + second.stderr
    assert_that(sorted(line_key(line, variant) for line in applied_lines(second.stdout)), equal_to(expected))
    repatched = {key(doc): kubectl_repatches(doc) for doc in variant.docs}
    for line in applied_lines(second.stdout):
        if mode == "client-side" and repatched[line_key(line, variant)]:
            assert line.endswith((" configured", " unchanged")), line
        else:
            assert line.endswith(f" {repeat_word}"), f"{line!r} in\n{second.stdout}"
    # Nothing written by the second apply: the apply manager's entries and every
    # object's spec generation are as they were (controllers may still write status),
    # and objects no controller writes keep their resourceVersion.
    again = live_objects(control_plane, variant)
    for object_key, item in live.items():
        assert_that(manager_entries(again[object_key], manager), equal_to(manager_entries(item, manager)),
                    f"{object_key} was changed by a repeated apply")
        assert_that(again[object_key]["metadata"].get("generation"), equal_to(item["metadata"].get("generation")),
                    f"{object_key}")
        if object_key[0] in UNTOUCHED_BY_CONTROLLERS:
            assert_that(again[object_key]["metadata"]["resourceVersion"],
                        equal_to(item["metadata"]["resourceVersion"]), f"{object_key} was written again")

    diff = control_plane.kubectl("diff", "-k", variant.directory, *flags)

    assert diff.returncode == 0, f"kubectl diff exited {diff.returncode}:\n{diff.stdout}{diff.stderr}"
    assert_that(diff.stdout, equal_to(""))

    deleted = control_plane.kubectl("delete", "-k", variant.directory, "--wait=true", "--timeout=120s")

    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert_that(sorted(line_key(line, variant) for line in applied_lines(deleted.stdout)), equal_to(expected))
    wait_until_gone(control_plane, variant)


@pytest.mark.parametrize("variant", WORKLOAD_VARIANTS, indirect=True)
def test_the_controllers_make_admitted_pods_from_every_workload_template(control_plane, variant, clean):
    applied = control_plane.kubectl("apply", "-k", variant.directory, "--server-side")
    assert applied.returncode == 0, applied.stdout + applied.stderr

    for workload in variant.of_kind("Deployment", "StatefulSet", "Job"):
        name, template = workload["metadata"]["name"], workload["spec"]["template"]
        pods = wait_for_pods(control_plane, workload)
        for pod in pods:
            # The pod carries the template: labels, account, security context, containers.
            assert_that(pod["metadata"]["labels"], has_entries(template["metadata"]["labels"]), name)
            assert_that(pod["spec"].get("serviceAccountName"), equal_to(template["spec"].get("serviceAccountName")))
            assert_that(pod["spec"]["securityContext"], has_entries(template["spec"]["securityContext"]), name)
            for container, wanted in zip(pod["spec"]["containers"], template["spec"]["containers"]):
                assert_that(container["name"], equal_to(wanted["name"]))
                assert_that(container["image"], equal_to(wanted["image"]))
                assert_that(container.get("securityContext", {}), has_entries(wanted.get("securityContext", {})))
            for field in ("topologySpreadConstraints", "affinity", "terminationGracePeriodSeconds",
                          "automountServiceAccountToken", "enableServiceLinks"):
                if field in template["spec"]:
                    assert_that(pod["spec"].get(field), equal_to(template["spec"][field]), f"{name}: {field}")
            if template["spec"].get("automountServiceAccountToken") is False:
                # The ServiceAccount admission plugin added no API token volume.
                assert_that([v["name"] for v in pod["spec"].get("volumes", []) if v["name"].startswith("kube-api")],
                            empty())
    # The disruption and autoscaling controllers have looked at every PDB and HPA.
    for budget in variant.of_kind("PodDisruptionBudget"):
        status = wait_for_status(control_plane, budget, lambda status: status.get("observedGeneration") == 1)
        assert_that(status["expectedPods"], greater_than(0), budget["metadata"]["name"])
    for autoscaler in variant.of_kind("HorizontalPodAutoscaler"):
        target = next(doc for doc in variant.of_kind(autoscaler["spec"]["scaleTargetRef"]["kind"])
                      if doc["metadata"]["name"] == autoscaler["spec"]["scaleTargetRef"]["name"])
        status = wait_for_status(control_plane, autoscaler, lambda status: "currentReplicas" in status)
        assert_that(status["currentReplicas"], equal_to(target["spec"]["replicas"]), autoscaler["metadata"]["name"])
    # No controller reported a pod that admission refused.
    events = control_plane.get_json(f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
    refused = [f"{e['involvedObject']['name']}: {e['message']}" for e in events if e["reason"] == "FailedCreate"]
    assert_that(refused, empty())


def wait_for_pods(control_plane, workload, timeout=60):
    """The pods a Deployment (through its ReplicaSet), StatefulSet or Job made: as many
    as it asks for (a StatefulSet makes its first only: the others wait for it to be Ready)."""
    kind, name = workload["kind"], workload["metadata"]["name"]
    selector = ",".join(f"{k}={v}" for k, v in workload["spec"]["selector"]["matchLabels"].items()) \
        if kind != "Job" else f"job-name={name}"
    wanted = {"Deployment": workload["spec"].get("replicas", 1), "StatefulSet": 1, "Job": 1}[kind]
    deadline = time.monotonic() + timeout
    while True:
        result = control_plane.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json")
        assert result.returncode == 0, result.stderr
        pods = [pod for pod in json.loads(result.stdout)["items"] if owned_by(pod, workload)]
        if len(pods) >= wanted:
            return pods
        if time.monotonic() > deadline:
            events = control_plane.kubectl("get", "events", "-n", NAMESPACE).stdout
            pytest.fail(f"{kind}/{name}: {len(pods)} of {wanted} pods after {timeout} s\n{events}")
        time.sleep(0.5)


def wait_for_status(control_plane, doc, done, timeout=60):
    """The object's status once `done(status)` holds."""
    kind, name = doc["kind"], doc["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while True:
        result = control_plane.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout).get("status") or {}
        if done(status):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"{kind}/{name}: status {status} after {timeout} s")
        time.sleep(0.5)


def owned_by(pod, workload):
    owners = pod["metadata"].get("ownerReferences", [])
    if workload["kind"] == "Deployment":
        return any(o["kind"] == "ReplicaSet" and o["name"].startswith(workload["metadata"]["name"] + "-")
                   for o in owners)
    return any(o["kind"] == workload["kind"] and o["name"] == workload["metadata"]["name"] for o in owners)


# A manifest the offline schema check takes but the API server does not: label values
# and port ranges are validated by the server, not by the OpenAPI schema.
BROKEN = {
    "service-port-70000": ("base/backend.yaml", "    port: 8000\n", "    port: 70000\n",
                           "Invalid value: 70000: must be between 1 and 65535"),
    "invalid-label-value": ("base/backend.yaml", "    app.kubernetes.io/component: api\n",
                            "    app.kubernetes.io/component: api/v1!\n", "Invalid value: \"api/v1!\""),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_api_server_rejects_what_the_offline_schema_check_accepts(control_plane, clean, tmp_path, case):
    path, old, new, message = BROKEN[case]
    broken = patched_copy(tmp_path, path, old, new)
    rendered = control_plane.kubectl("kustomize", broken)
    assert rendered.returncode == 0, rendered.stderr
    (tmp_path / "rendered.yaml").write_text(rendered.stdout)
    # A server dry run of a namespaced object needs its namespace to exist for real.
    namespace = next(doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc["kind"] == "Namespace")
    created = control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(namespace))
    assert created.returncode == 0, created.stderr

    offline = run_tool([tool("kubernetes-validate"), "--strict", "--quiet", "-k", "1.34.0",
                        str(tmp_path / "rendered.yaml")])
    server = control_plane.kubectl("apply", "-k", broken, "--dry-run=server")

    assert offline.returncode == 0, f"the offline check caught it after all:\n{offline.stdout}{offline.stderr}"
    assert_that(server.returncode, is_not(equal_to(0)))
    assert_that(server.stderr, contains_string(message))
    # A dry run: nothing was made.
    assert_that(control_plane.request(f"/api/v1/namespaces/{NAMESPACE}/services/backend")[0], equal_to(404))
