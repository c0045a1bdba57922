"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and
kube-controller-manager, built from their Go modules by scripts/setup-control-plane.sh
(pins in tools/k8s/), on free loopback ports with their data in a temporary directory.

kube-apiserver serves TLS with a certificate from a CA made here (openssl), trusts
client certificates from that CA, authorizes with RBAC only, and signs service-account
tokens with a key made here. The admin is a client certificate in `system:masters`;
`control_plane.kubeconfig` points at it. kube-controller-manager runs the usual
controllers (namespace deletion, Deployments -> ReplicaSets -> Pods, StatefulSets,
Jobs, HPA, PDB, service accounts, garbage collection), so what the API server accepts
is reconciled as in a cluster. There is no kubelet, scheduler or container runtime:
pods are created and admitted (Pod Security included) but stay Pending.

Use the session fixture `control_plane` (tests/conftest.py registers this module as a
plugin; alone: `pytest -p tests.control_plane ...`). Without the binaries the tests
skip, except under CI=true, where they fail. The logs are copied to
test-artifacts/control-plane/ at the end of the session.
"""
import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import unavailable
from tests.test_k8s_tools import tool

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup-control-plane.sh"
ARTIFACTS = ROOT / "test-artifacts" / "control-plane"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
START_SECONDS = 120
SERVICE_CIDR = "10.96.0.0/16"
ADMIN = "kyb-test-admin"


def binaries_dir():
    """Where scripts/setup-control-plane.sh builds the binaries ($KYB_CONTROL_PLANE_DIR overrides)."""
    if os.environ.get("KYB_CONTROL_PLANE_DIR"):
        return Path(os.environ["KYB_CONTROL_PLANE_DIR"])
    result = subprocess.run(["bash", str(SETUP), "--print-dir"], capture_output=True, text=True, check=True)
    return Path(result.stdout.strip())


def free_ports(count):
    """`count` distinct free loopback ports (held together while chosen, so never the same)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent():
    # If pytest dies without tearing down, the servers get SIGTERM instead of lingering.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


class PKI:
    """A CA, the API server's serving certificate, the admin's client certificate and
    the service-account signing key (all ECDSA P-256), made with the openssl CLI."""

    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = self._key("ca")
        openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.crt", "-days", "2",
                "-subj", "/CN=kyb-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=directory)
        self.serving = self._certificate(
            "apiserver", "/CN=kube-apiserver", "serverAuth",
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,IP:10.96.0.1")
        self.admin = self._certificate("admin", f"/O=system:masters/CN={ADMIN}", "clientAuth")
        self.service_account_key = self._key("service-account")
        self.service_account_public_key = directory / "service-account.pub"
        openssl("ec", "-in", "service-account.key", "-pubout", "-out", "service-account.pub", cwd=directory)

    @property
    def ca_cert(self):
        return self.dir / "ca.crt"

    @property
    def ca_key(self):
        return self.dir / "ca.key"

    def _key(self, name):
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=self.dir)
        return self.dir / f"{name}.key"

    def _certificate(self, name, subject, usage, extra=""):
        self._key(name)
        openssl("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=self.dir)
        extensions = self.dir / f"{name}.ext"
        extensions.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                              f"extendedKeyUsage={usage}\n" + (extra + "\n" if extra else ""))
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", extensions.name, cwd=self.dir)
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"


def write_kubeconfig(path: Path, server, ca_cert: Path, user: dict, name="kyb-test"):
    """A kubeconfig (JSON is YAML) with one cluster, one user and a context using both."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode()}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


class Process:
    def __init__(self, name, argv, log_path):
        self.name, self.log_path = name, log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          preexec_fn=_die_with_parent)

    def check(self):
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager; `kubectl(...)` runs the checks
    venv's kubectl (the offline checks' binary) against it as the admin."""

    def __init__(self, work: Path, bin_dir: Path):
        self.work, self.bin = work, bin_dir
        self.processes = []
        self.start_seconds = None

    # --- lifecycle -------------------------------------------------------------
    def start(self):
        started = time.monotonic()
        try:
            self.pki = PKI(self.work / "pki")
            self._start_etcd()
            self._start_apiserver()
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self):
        for process in reversed(self.processes):
            process.stop()
        self.processes = []

    def save_logs(self, destination: Path = ARTIFACTS):
        destination.mkdir(parents=True, exist_ok=True)
        for log in self.work.glob("*.log"):
            shutil.copy(log, destination / log.name)

    def _spawn(self, name, argv):
        process = Process(name, argv, self.work / f"{name}.log")
        self.processes.append(process)
        return process

    def _wait(self, process, ready, what):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            process.check()
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{process.name}: {what} after {START_SECONDS} s:\n{process.log_tail()}")

    def _start_etcd(self):
        client, peer, self.port = free_ports(3)
        self.etcd_url = f"http://127.0.0.1:{client}"
        etcd = self._spawn("etcd", [
            str(self.bin / "etcd"), "--name=kyb-test", f"--data-dir={self.work / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=kyb-test=http://127.0.0.1:{peer}", "--log-level=warn",
            # Test data: no fsync (as Kubernetes' own integration tests run etcd).
            "--unsafe-no-fsync"])

        def healthy():
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as response:
                return json.load(response).get("health") == "true"
        self._wait(etcd, healthy, "not healthy")

    def _start_apiserver(self):
        self.server = f"https://127.0.0.1:{self.port}"
        serving_cert, serving_key = self.pki.serving
        apiserver = self._spawn("kube-apiserver", [
            str(self.bin / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--cert-dir={self.work / 'apiserver-certs'}",
            f"--tls-cert-file={serving_cert}", f"--tls-private-key-file={serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            "--authorization-mode=RBAC", "--anonymous-auth=false",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki.service_account_public_key}",
            f"--service-account-signing-key-file={self.pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # The admission plugins are the defaults (NamespaceLifecycle, ServiceAccount,
            # PodSecurity, ResourceQuota, LimitRanger, the webhooks, ...).
            "--profiling=false", "--v=0"])
        self.ssl_context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        self.ssl_context.load_cert_chain(*map(str, self.pki.admin))
        self.kubeconfig = write_kubeconfig(self.work / "admin.kubeconfig", self.server, self.pki.ca_cert, {
            "client-certificate-data": base64.b64encode(self.pki.admin[0].read_bytes()).decode(),
            "client-key-data": base64.b64encode(self.pki.admin[1].read_bytes()).decode()})
        self._wait(apiserver, lambda: self.request("/readyz")[0] == 200, "/readyz not ok")

    def _start_controller_manager(self):
        controller_manager = self._spawn("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            f"--cluster-signing-cert-file={self.pki.ca_cert}", f"--cluster-signing-key-file={self.pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Quick reconciling for tests (defaults: 15 s HPA sync, 60 s namespace resync).
            "--horizontal-pod-autoscaler-sync-period=2s", "--namespace-sync-period=10s",
            "--profiling=false", "--v=0"])
        # The service-account controller makes `default` in every namespace: it runs.
        self._wait(controller_manager,
                   lambda: self.request("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
                   "made no default ServiceAccount")

    # --- clients ---------------------------------------------------------------
    def request(self, path, method="GET", body=None, headers=None):
        """(status, body text) of one request as the admin."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, context=self.ssl_context, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def get_json(self, path):
        status, text = self.request(path)
        assert status == 200, f"GET {path}: {status} {text}"
        return json.loads(text)

    def kubectl(self, *args, input=None, kubeconfig=None, timeout=180):
        """`kubectl ARGS` against this server (as the admin unless `kubeconfig` says otherwise)."""
        env = dict(os.environ, KUBECACHEDIR=str(self.work / "kubectl-cache"))
        env.pop("KUBECONFIG", None)
        argv = [tool("kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *map(str, args)]
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env)

    def service_account_kubeconfig(self, namespace, name, path: Path):
        """A kubeconfig holding a bound token of ServiceAccount NAMESPACE/NAME (TokenRequest),
        as a pod of that account would authenticate."""
        result = self.kubectl("create", "token", name, "-n", namespace, "--duration=1h")
        assert result.returncode == 0, result.stderr
        return write_kubeconfig(path, self.server, self.pki.ca_cert, {"token": result.stdout.strip()})


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    """A running etcd + kube-apiserver + kube-controller-manager for the whole session."""
    bin_dir = binaries_dir()
    missing = [name for name in BINARIES if not (bin_dir / name).exists()]
    if missing and not os.environ.get("KYB_CONTROL_PLANE_DIR"):
        # scripts/test.sh may be building them in the background: this waits for its lock
        # (or builds them here), and prints how long that took.
        started = time.monotonic()
        built = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True)
        print(f"\ncontrol plane: waited {time.monotonic() - started:.0f} s for its build\n{built.stderr[-2000:]}",
              file=sys.stderr)
        missing = [name for name in BINARIES if not (bin_dir / name).exists()]
    if missing:
        unavailable(f"{', '.join(missing)} missing in {bin_dir}: run scripts/setup-control-plane.sh (make setup)")
    if shutil.which("openssl") is None:
        unavailable("openssl is missing: apt-get install openssl")
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"), bin_dir)
    try:
        plane.start()
    except BaseException:
        plane.save_logs()
        raise
    print(f"\ncontrol plane: ready in {plane.start_seconds:.1f} s at {plane.server}", file=sys.stderr)
    yield plane
    plane.stop()
    plane.save_logs()
