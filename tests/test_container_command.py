"""Each image's command runs for real. No image can be built on our machines (the base
image's registry is out of reach), so this test does what the image would: it copies
exactly the files the Dockerfile's final stage copies into an image-like tree, starts
the Dockerfile's ENTRYPOINT + CMD there with the Dockerfile's ENV and the Kubernetes
settings (k8s/base/<app>.env, hosts swapped for the test servers), in a clean venv
made from requirements.txt alone (the file the image installs; not the dev venv),
and checks that the probes answer and that SIGTERM stops it cleanly.
"""
import hashlib
import json
import os
import re
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from hamcrest import assert_that, contains_string, equal_to, has_entries, is_not
from pymongo import MongoClient

from tests import servers
from tests.conftest import database_uri

ROOT = Path(__file__).resolve().parents[1]
APPS = ("backend", "frontend")
STARTUP_SECONDS = 30


def instructions(dockerfile):
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(words[0].upper(), words[1].strip()) for words in (line.split(None, 1) for line in text.splitlines())
            if words]


def final_stage(dockerfile):
    """What the image's last stage is made of: base, env, workdir, user, copies, command."""
    stage = None
    for instruction, arguments in instructions(dockerfile):
        if instruction == "FROM":
            stage = {"from": arguments.split()[0], "env": {}, "workdir": "/", "copies": [], "entrypoint": [],
                     "cmd": [], "user": None, "run": []}
        elif instruction == "ENV":
            stage["env"].update(item.split("=", 1) for item in shlex.split(arguments))
        elif instruction == "WORKDIR":
            stage["workdir"] = os.path.join(stage["workdir"], arguments)
        elif instruction == "USER":
            stage["user"] = arguments
        elif instruction == "RUN":
            stage["run"].append(arguments)
        elif instruction == "COPY":
            words = shlex.split(arguments)
            if not any(word.startswith("--from") for word in words):
                *sources, target = [word for word in words if not word.startswith("--")]
                stage["copies"] += [(source, target) for source in sources]
        elif instruction in ("CMD", "ENTRYPOINT"):
            assert arguments.startswith("["), f"{dockerfile.name}: {instruction} must be in exec (JSON) form"
            stage[instruction.lower()] = json.loads(arguments)
    return stage


def dockerfile(app):
    return ROOT / "docker" / f"{app}.Dockerfile"


def runtime_venv():
    """A venv of requirements.txt alone, made once per version of that file."""
    requirements = ROOT / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("KYB_CACHE", Path.home() / ".cache" / "kyb"))
    venv = cache / f"venv-runtime-{digest}"
    if not (venv / ".installed").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "--requirement", str(requirements)],
                       check=True, env=os.environ | {"PIP_CACHE_DIR": str(cache / "pip")})
        (venv / ".installed").touch()
    return venv


def image_tree(stage, root):
    """The final stage's COPY instructions applied to an empty directory `root`."""
    for source, target in stage["copies"]:
        destination = root / os.path.join(stage["workdir"], target).lstrip("/")
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, destination)
    return root / stage["workdir"].lstrip("/")


def cluster_settings(app):
    """The settings the app gets on Kubernetes (k8s/base/<app>.env)."""
    lines = (ROOT / "k8s" / "base" / f"{app}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


class Container:
    """An app started the way its image starts it."""

    def __init__(self, app, tmp_path, settings):
        self.stage = final_stage(dockerfile(app))
        venv = runtime_venv()
        workdir = image_tree(self.stage, tmp_path / "image")
        home = tmp_path / "home"
        home.mkdir()
        self.port = servers.free_port()
        flags = tmp_path / "flags"  # where the kyb-flags ConfigMap is mounted on the cluster
        flags.mkdir()
        shutil.copy(ROOT / "config" / "flags.json", flags / "flags.json")
        self.metrics_port = servers.free_port()
        path = f"{venv / 'bin'}:/usr/bin:/bin"
        env = {"HOME": str(home), "TMPDIR": str(tmp_path)} | self.stage["env"] | cluster_settings(app) | settings
        env |= {"PATH": path, "PORT": str(self.port), "FLAGS_FILE": str(flags / "flags.json"),
                "METRICS_PORT": str(self.metrics_port), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        self.log = tmp_path / f"{app}.log"
        argv = self.stage["entrypoint"] + self.stage["cmd"]
        argv[0] = shutil.which(argv[0], path=path) or argv[0]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_until_serving()

    def wait_until_serving(self):
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"exited with {self.process.returncode}:\n{self.log.read_text()}"
            try:
                requests.get(f"{self.url}/healthz", timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):  # no worker has booted yet
                time.sleep(0.1)
        raise AssertionError(f"not serving after {STARTUP_SECONDS}s:\n{self.log.read_text()}")

    def stop(self):
        """SIGTERM, as the kubelet sends after the preStop pause; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            graceful_timeout = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))["graceful_timeout"]
            try:
                self.process.wait(timeout=graceful_timeout + 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def backend_container(mongodb_uri, redis_url, tmp_path_factory):
    name = f"kyb_container_{uuid.uuid4().hex[:12]}"
    container = Container("backend", tmp_path_factory.mktemp("backend"),
                          {"MONGODB_URI": database_uri(mongodb_uri, name), "REDIS_URL": redis_url})
    yield container
    container.stop()
    with MongoClient(mongodb_uri) as client:
        client.drop_database(name)


@pytest.fixture(scope="module")
def frontend_container(backend_container, tmp_path_factory):
    container = Container("frontend", tmp_path_factory.mktemp("frontend"), {"BACKEND_URL": backend_container.url})
    yield container
    container.stop()


@pytest.fixture
def container(request):
    return request.getfixturevalue(f"{request.param}_container")


@pytest.mark.parametrize("container", APPS, indirect=True)
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_image_command_serves_the_probes(container, path):
    response = requests.get(f"{container.url}{path}", timeout=5)

    assert_that(response.status_code, equal_to(200), response.text)


@pytest.mark.parametrize("container", APPS, indirect=True)
def test_the_image_command_serves_metrics_on_the_metrics_port_only(container):
    app = container.stage["cmd"][-1].split(":")[0]
    metrics = requests.get(f"http://127.0.0.1:{container.metrics_port}/metrics", timeout=5)

    assert_that(metrics.status_code, equal_to(200))
    assert_that(metrics.text, contains_string(f"kyb_{app}_http_requests_total"))
    assert_that(requests.get(f"{container.url}/metrics", timeout=5).status_code, equal_to(404))
    assert_that(requests.get(f"http://127.0.0.1:{container.metrics_port}/healthz", timeout=5).status_code,
                equal_to(404))


def test_the_backend_is_ready_with_its_database_and_cache(backend_container):
    assert_that(requests.get(f"{backend_container.url}/readyz", timeout=5).json(),
                has_entries(database="ok", cache=is_not("unavailable")))


@pytest.mark.parametrize("app", APPS)
def test_sigterm_stops_the_image_command_cleanly(app, mongodb_uri, redis_url, tmp_path):
    settings = {"MONGODB_URI": database_uri(mongodb_uri, "kyb_container_stop"), "REDIS_URL": redis_url}
    container = Container(app, tmp_path, settings if app == "backend" else {})
    requests.get(f"{container.url}/healthz", timeout=5)

    assert_that(container.stop(), equal_to(0))


@pytest.mark.parametrize("app", APPS)
def test_the_image_runs_gunicorn_with_the_config_file_as_a_numeric_non_root_user(app):
    stage = final_stage(dockerfile(app))
    manifest = (ROOT / "k8s" / "base" / f"{app}.yaml").read_text()

    assert_that(stage["entrypoint"] + stage["cmd"],
                equal_to(["gunicorn", "--config", "config/gunicorn.conf.py", f"{app}:create_app()"]))
    assert re.fullmatch(r"[1-9]\d{3,}:\d+", stage["user"] or ""), f"USER {stage['user']} is no numeric non-root uid:gid"
    assert_that(re.search(r"runAsUser: (\d+)", manifest)[1], equal_to(stage["user"].split(":")[0]))
    for name in ("PORT", "PROMETHEUS_MULTIPROC_DIR"):
        assert_that(stage["env"][name], equal_to(cluster_settings(app)[name]))


@pytest.mark.parametrize("app", APPS)
def test_the_image_is_multi_stage_on_an_exact_slim_python_of_the_tests_minor_version(app):
    stages = [arguments.split()[0] for instruction, arguments in instructions(dockerfile(app))
              if instruction == "FROM"]
    final = final_stage(dockerfile(app))
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"

    assert len(stages) >= 2, "build the venv in a stage of its own"
    assert re.fullmatch(rf"python:{re.escape(minor)}\.\d+-slim-[a-z]+", final["from"]), final["from"]
    assert_that(set(stages), equal_to({final["from"]}))
    # The slim image has no compilers; the final stage must not bring any in.
    assert not any("apt-get" in command or "apk " in command for command in final["run"]), final["run"]


def test_the_dockerignore_keeps_every_file_the_images_copy():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for app in APPS:
        for instruction, arguments in instructions(dockerfile(app)):
            words = shlex.split(arguments)
            if instruction == "COPY" and not any(word.startswith("--from") for word in words):
                for source in [word for word in words if not word.startswith("--")][:-1]:
                    assert any(source == item or source.startswith(f"{item}/") for item in kept), \
                        f".dockerignore leaves out {source}, which {app}.Dockerfile copies"
