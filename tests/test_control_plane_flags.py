"""The flags admin tool (`python -m tools.flags`) under real RBAC: k8s/ applied to a real
kube-apiserver (tests/control_plane.py), the tool run as the `kyb-flags-admin`
ServiceAccount, both with a bound token of that account (as in a pod) and by
impersonation (`--as`). It may read and patch the `kyb-flags` ConfigMap and nothing
else; what it may not do is answered 403 and the tool says so; concurrent changes
all land.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hamcrest import assert_that, contains_string, equal_to, has_entries, has_length, starts_with

from tests.test_k8s_tools import K8S

ROOT = Path(__file__).resolve().parents[1]
# The control_plane fixture (conftest may register it too; once is enough).
pytest_plugins = ["tests.control_plane"]

NAMESPACE = "kyb"
OTHER_NAMESPACE = "kyb-elsewhere"
CONFIGMAP = "kyb-flags"
ACCOUNT = "kyb-flags-admin"
USER = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"


@pytest.fixture(scope="module")
def stack(control_plane, tmp_path_factory):
    """k8s/ applied, plus another namespace holding a ConfigMap of the same name."""
    for namespace in (NAMESPACE, OTHER_NAMESPACE):
        control_plane.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s")
    applied = control_plane.kubectl("apply", "-k", K8S)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    rendered = [doc for doc in yaml.safe_load_all(control_plane.kubectl("kustomize", K8S).stdout) if doc]
    flags = next(doc for doc in rendered if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == CONFIGMAP)
    other = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": OTHER_NAMESPACE},
         "data": flags["data"]}]}
    created = control_plane.kubectl("apply", "-f", "-", input=json.dumps(other))
    assert created.returncode == 0, created.stderr
    yield {"docs": rendered, "flags": flags,
           "token_kubeconfig": control_plane.service_account_kubeconfig(
               NAMESPACE, ACCOUNT, tmp_path_factory.mktemp("flags-admin") / "kubeconfig")}
    for namespace in (NAMESPACE, OTHER_NAMESPACE):
        control_plane.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s")


@pytest.fixture
def flags(control_plane, stack):
    """The flags document in the cluster, reset to the manifests' before each test."""
    original = stack["flags"]["data"]
    reset = control_plane.kubectl("patch", "configmap", CONFIGMAP, "-n", NAMESPACE, "--type=merge",
                                  "-p", json.dumps({"data": original}))
    assert reset.returncode == 0, reset.stderr
    return json.loads(original["flags.json"])


def flags_in_cluster(control_plane, namespace=NAMESPACE):
    configmap = control_plane.get_json(f"/api/v1/namespaces/{namespace}/configmaps/{CONFIGMAP}")
    return json.loads(configmap["data"]["flags.json"])


def flags_tool(control_plane, stack, *args, impersonate=False):
    """`python -m tools.flags ARGS` as the ServiceAccount: its bound token, or the admin
    impersonating it with `--as`."""
    if impersonate:
        options = ["--kubeconfig", str(control_plane.kubeconfig), "--as", USER]
    else:
        options = ["--kubeconfig", str(stack["token_kubeconfig"])]
    return subprocess.run([sys.executable, "-m", "tools.flags", *options, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("impersonate", [False, True], ids=["token", "impersonation"])
def test_the_account_lists_and_gets_the_flags(control_plane, stack, flags, impersonate):
    listed = flags_tool(control_plane, stack, "list", impersonate=impersonate)
    got = flags_tool(control_plane, stack, "get", "ui_theme", impersonate=impersonate)

    assert listed.returncode == 0, listed.stderr
    assert_that([line.split("\t")[0] for line in listed.stdout.splitlines()], equal_to(sorted(flags["flags"])))
    assert got.returncode == 0, got.stderr
    assert_that(json.loads(got.stdout), equal_to(flags["flags"]["ui_theme"]))


@pytest.mark.parametrize("impersonate", [False, True], ids=["token", "impersonation"])
def test_the_account_sets_disables_and_enables_a_flag(control_plane, stack, flags, impersonate):
    assert_that(flags["flags"]["ui_theme"]["defaultVariant"], equal_to("light"))

    changed = flags_tool(control_plane, stack, "set", "ui_theme", "dark", impersonate=impersonate)
    disabled = flags_tool(control_plane, stack, "disable", "stats", impersonate=impersonate)

    assert changed.returncode == 0, changed.stderr
    assert_that(changed.stdout.strip(), equal_to("ui_theme: defaultVariant light -> dark"))
    assert disabled.returncode == 0, disabled.stderr
    document = flags_in_cluster(control_plane)
    assert_that(document["flags"]["ui_theme"], has_entries(defaultVariant="dark"))
    assert_that(document["flags"]["stats"], has_entries(state="DISABLED"))

    enabled = flags_tool(control_plane, stack, "enable", "stats", impersonate=impersonate)

    assert enabled.returncode == 0, enabled.stderr
    assert_that(flags_in_cluster(control_plane)["flags"]["stats"], has_entries(state="ENABLED"))


def other_configmap(stack):
    return next(doc["metadata"]["name"] for doc in stack["docs"]
                if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] != CONFIGMAP)


def a_secret(stack):
    return next(doc["metadata"]["name"] for doc in stack["docs"] if doc["kind"] == "Secret")


@pytest.mark.parametrize("case", ["another ConfigMap", "another namespace"])
@pytest.mark.parametrize("impersonate", [False, True], ids=["token", "impersonation"])
def test_the_tool_is_refused_anything_else_and_says_so(control_plane, stack, flags, case, impersonate):
    if case == "another ConfigMap":
        options = ["--configmap", other_configmap(stack)]
    else:
        options = ["--namespace", OTHER_NAMESPACE]

    for command in (["list"], ["set", "ui_theme", "dark"]):
        result = flags_tool(control_plane, stack, *options, *command, impersonate=impersonate)

        assert_that(result.returncode, equal_to(1))
        assert_that(result.stderr, starts_with("flags: not allowed: "))
        assert_that(result.stderr, contains_string("403 Forbidden"))
        assert_that(result.stderr.splitlines(), has_length(1))
    assert_that(flags_in_cluster(control_plane, OTHER_NAMESPACE), equal_to(flags))


def can_i(control_plane, *args, namespace=NAMESPACE):
    result = control_plane.kubectl("auth", "can-i", *args, "-n", namespace, "--as", USER)
    assert result.stdout.strip() in ("yes", "no"), result.stdout + result.stderr
    return result.stdout.strip()


def test_rbac_grants_the_account_get_and_patch_on_the_flags_configmap_only(control_plane, stack):
    other, secret = other_configmap(stack), a_secret(stack)

    allowed = {f"{verb} configmap/{CONFIGMAP}": can_i(control_plane, verb, f"configmap/{CONFIGMAP}")
               for verb in ("get", "patch")}
    refused = {
        **{f"{verb} configmap/{CONFIGMAP}": can_i(control_plane, verb, f"configmap/{CONFIGMAP}")
           for verb in ("update", "delete", "watch")},
        "list configmaps": can_i(control_plane, "list", "configmaps"),
        "create configmaps": can_i(control_plane, "create", "configmaps"),
        f"get configmap/{other}": can_i(control_plane, "get", f"configmap/{other}"),
        f"patch configmap/{other}": can_i(control_plane, "patch", f"configmap/{other}"),
        "get secrets": can_i(control_plane, "get", "secrets"),
        f"get secret/{secret}": can_i(control_plane, "get", f"secret/{secret}"),
        "list secrets": can_i(control_plane, "list", "secrets"),
        "list pods": can_i(control_plane, "list", "pods"),
        f"get configmap/{CONFIGMAP} in {OTHER_NAMESPACE}":
            can_i(control_plane, "get", f"configmap/{CONFIGMAP}", namespace=OTHER_NAMESPACE),
        f"patch configmap/{CONFIGMAP} in {OTHER_NAMESPACE}":
            can_i(control_plane, "patch", f"configmap/{CONFIGMAP}", namespace=OTHER_NAMESPACE),
    }

    assert_that(allowed, equal_to({what: "yes" for what in allowed}))
    assert_that(refused, equal_to({what: "no" for what in refused}))


@pytest.mark.parametrize("request_args", [
    pytest.param(lambda stack: ["get", "secret", a_secret(stack)], id="read a Secret"),
    pytest.param(lambda stack: ["get", "secrets"], id="list Secrets"),
    pytest.param(lambda stack: ["patch", "configmap", other_configmap(stack), "--type=merge",
                                "-p", '{"data": {"x": "y"}}'], id="patch another ConfigMap"),
    pytest.param(lambda stack: ["patch", "configmap", CONFIGMAP, "-n", OTHER_NAMESPACE, "--type=merge",
                                "-p", '{"data": {"x": "y"}}'], id="patch in another namespace"),
    pytest.param(lambda stack: ["delete", "configmap", CONFIGMAP], id="delete the flags ConfigMap"),
])
def test_the_account_token_is_answered_403_for_anything_else(control_plane, stack, flags, request_args):
    args = request_args(stack)
    if "-n" not in args:
        args += ["-n", NAMESPACE]

    result = control_plane.kubectl(*args, kubeconfig=stack["token_kubeconfig"])

    assert_that(result.returncode, equal_to(1))
    assert_that(result.stderr, contains_string("(Forbidden)"))
    assert_that(result.stderr, contains_string(USER))
    assert_that(flags_in_cluster(control_plane), equal_to(flags))


def conflicts(control_plane):
    """How many PATCHes of a ConfigMap the API server has answered 409 Conflict."""
    status, text = control_plane.request("/metrics")
    assert status == 200, text
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("apiserver_request_total{") and 'code="409"' in line
                and 'resource="configmaps"' in line and 'verb="PATCH"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


# Each process loads the tool and its kubeconfig, says it is ready, and waits for the
# word; then `tools.flags.main` runs (argument parsing, read, patch, retry on 409) in
# all of them at once, so their reads and patches fall within milliseconds of each
# other, as when two operators collide.
AT_ONCE = """
import os, sys, time
from pathlib import Path
from tools import flags
barrier, argv = Path(sys.argv[1]), sys.argv[2:]
api = flags.api_client(flags.parser().parse_args(argv))
flags.api_client = lambda args: api
(barrier / f"ready-{os.getpid()}").touch()
while not (barrier / "go").exists():
    time.sleep(0.001)
sys.exit(flags.main(argv))
"""
CHANGES = [["set", "ui_theme", "contrast"], ["set", "progress_bar", "on"], ["disable", "carry_over"],
           ["set", "read_only", "on"]]


def test_concurrent_sets_of_different_flags_all_land(control_plane, stack, flags, tmp_path):
    expected = json.loads(json.dumps(flags))
    expected["flags"]["ui_theme"]["defaultVariant"] = "contrast"
    expected["flags"]["progress_bar"]["defaultVariant"] = "on"
    expected["flags"]["carry_over"]["state"] = "DISABLED"
    expected["flags"]["read_only"]["defaultVariant"] = "on"
    options = ["--kubeconfig", str(stack["token_kubeconfig"])]
    conflicts_before, rounds = conflicts(control_plane), 0

    # Until the API server has answered at least one of them 409 (nearly always the first round).
    while rounds == 0 or (conflicts(control_plane) == conflicts_before and rounds < 10):
        rounds += 1
        reset = control_plane.kubectl("patch", "configmap", CONFIGMAP, "-n", NAMESPACE, "--type=merge",
                                      "-p", json.dumps({"data": stack["flags"]["data"]}))
        assert reset.returncode == 0, reset.stderr
        barrier = tmp_path / f"round-{rounds}"
        barrier.mkdir()
        processes = [subprocess.Popen([sys.executable, "-c", AT_ONCE, str(barrier), *options, *change], cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for change in CHANGES]
        deadline = time.monotonic() + 60
        while len(list(barrier.glob("ready-*"))) < len(CHANGES) and time.monotonic() < deadline:
            assert all(process.poll() is None for process in processes), "a tool process died before the start"
            time.sleep(0.01)
        (barrier / "go").touch()
        results = [(process.wait(60), *process.communicate()) for process in processes]

        for code, out, err in results:
            assert_that(code, equal_to(0), err)
        assert_that(flags_in_cluster(control_plane), equal_to(expected))

    print(f"concurrent sets: {rounds} round(s), {conflicts(control_plane) - conflicts_before:.0f} conflict(s) answered 409")
    assert conflicts(control_plane) > conflicts_before, f"no 409 in {rounds} rounds: the retry was never needed"
