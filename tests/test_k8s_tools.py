"""The manifests and Dockerfiles pass the offline tools: `kubectl kustomize` renders
every variant, `kubernetes-validate --strict` accepts it for each Kubernetes version we
support, checkov finds nothing (skips: k8s/checkov.yaml only), hadolint finds nothing.

The tools live in their own venv (scripts/setup-checks.sh); KYB_CHECKS_BIN names its
bin directory. Without it the tests skip, except under CI=true, where they fail.
This module also renders for tests/test_k8s_consistency.py.
"""
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hamcrest import assert_that, contains_string, empty, equal_to, greater_than, has_entries, is_not

from tests.servers import unavailable

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
KUBERNETES_VERSIONS = ("1.33.0", "1.34.0")


def optional_components():
    """The components under k8s/components that k8s/kustomization.yaml does not list already."""
    default = set(re.findall(r"^- components/([\w-]+)$", (K8S / "kustomization.yaml").read_text(), re.M))
    return tuple(sorted(path.parent.name for path in (K8S / "components").glob("*/kustomization.yaml")
                        if path.parent.name not in default))


# What a user deploys: the default stack, the stack with each optional component, the HA overlay.
VARIANTS = ("default", *optional_components(), "ha")
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
YAML_TO_JSON = "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)"


def checks_bin():
    """The tools' bin directory: $KYB_CHECKS_BIN, else where scripts/setup-checks.sh puts it."""
    if os.environ.get("KYB_CHECKS_BIN"):
        return Path(os.environ["KYB_CHECKS_BIN"])
    digest = hashlib.sha256((ROOT / "requirements-checks.txt").read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("KYB_CACHE", Path.home() / ".cache" / "kyb"))
    return cache / f"venv-checks-{digest}" / "bin"


def tool(name):
    path = checks_bin() / name
    if not path.exists():
        unavailable(f"{path} is missing: run scripts/setup-checks.sh")
    return str(path)


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


class Rendering:
    """The YAML that `kubectl kustomize` printed for one variant, and its objects."""

    def __init__(self, text, docs):
        self.text, self.docs = text, docs

    def of_kind(self, *kinds):
        return [doc for doc in self.docs if doc["kind"] in kinds]

    def named(self, kind, name):
        return next((doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name), None)


def kustomize(directory):
    result = run([tool("kubectl"), "kustomize", str(directory)])
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def parse_yaml(text):
    # The checks venv has PyYAML; the app's venv needs none for this.
    result = run([tool("python"), "-c", YAML_TO_JSON], input=text)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@functools.lru_cache(maxsize=None)
def render(variant, k8s=K8S):
    """Render one variant of the tree at `k8s` (the repository's, or a patched copy)."""
    if variant == "default":
        text = kustomize(k8s)
    elif variant == "ha":
        text = kustomize(k8s / "overlays" / "ha")
    elif (k8s / "components" / variant / "kustomization.yaml").exists():
        # A kustomization may name a base or component only by a relative path.
        with tempfile.TemporaryDirectory() as work:
            relative = os.path.relpath(k8s, work)
            Path(work, "kustomization.yaml").write_text(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                f"resources:\n- {relative}\ncomponents:\n- {relative}/components/{variant}\n")
            text = kustomize(work)
    else:
        raise ValueError(variant)
    return Rendering(text, parse_yaml(text))


def patched_copy(tmp_path, relative_path, old, new):
    """A copy of k8s/ in tmp_path with one text replacement in one file."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    path = copy / relative_path
    text = path.read_text()
    assert old in text, f"{old!r} is not in {relative_path}"
    path.write_text(text.replace(old, new, 1))
    return copy


def validate(rendering, version, tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(rendering.text)
    return run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(path)])


@pytest.mark.parametrize("variant", VARIANTS)
def test_kubectl_kustomize_renders_each_variant_into_the_kyb_namespace(variant):
    rendering = render(variant)

    assert_that(rendering.of_kind("Deployment", "StatefulSet"), is_not(empty()))
    for doc in rendering.docs:
        if doc["kind"] != "Namespace":
            assert_that(doc["metadata"], has_entries(namespace="kyb"), doc["metadata"]["name"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_kubernetes_validate_strict_accepts_each_variant(variant, version, tmp_path):
    result = validate(render(variant), version, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_strict_rejects_a_misspelt_field(tmp_path):
    broken = patched_copy(tmp_path, "base/backend.yaml", "        readinessProbe:", "        readinesProbe:")

    result = validate(render("default", broken), KUBERNETES_VERSIONS[0], tmp_path)

    assert_that(result.returncode, is_not(equal_to(0)))
    assert_that(result.stdout + result.stderr, contains_string("readinesProbe"))


def checkov(rendering, tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(rendering.text)
    result = run([tool("checkov"), "--config-file", str(K8S / "checkov.yaml"), "--output", "json",
                  "--file", str(path)], cwd=tmp_path)
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkov_finds_nothing_in_each_variant(variant, tmp_path):
    report = checkov(render(variant), tmp_path)

    failed = [f"{check['check_id']} {check['resource']}: {check['check_name']}"
              for check in report["results"]["failed_checks"]]
    assert_that(failed, empty())
    assert_that(report["summary"], has_entries(parsing_errors=0, passed=greater_than(0)))


def test_every_checkov_skip_states_its_reason():
    lines = (K8S / "checkov.yaml").read_text().splitlines()
    start = lines.index("skip-check:")
    skips = [line for line in lines[start + 1:] if line.startswith("- ")]

    assert_that(skips, is_not(empty()))
    for line in skips:
        assert re.fullmatch(r"- CKV2?_K8S_\d+ +# \S.{20,}", line), f"a skip without a reason: {line}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_finds_nothing_in_the_dockerfile(dockerfile):
    result = run([tool("hadolint"), "--no-color", str(dockerfile)])

    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_a_dockerfile_for_each_app():
    assert_that([path.name for path in DOCKERFILES], equal_to(["backend.Dockerfile", "frontend.Dockerfile"]))
