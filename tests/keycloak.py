"""A real Keycloak for the tests: the session-scoped `keycloak` fixture.

Registered as a pytest plugin (`pytest_plugins` in tests/conftest.py, or `-p tests.keycloak`).
The server is the distribution that scripts/setup-keycloak.sh installs; it runs in dev mode
on free loopback ports (HTTP and management) with its H2 database in a temporary
directory, realm `kyb` imported from config/keycloak/kyb-realm.json. The fixture yields
once realm `kyb` answers its discovery document. Without an installed Keycloak the tests
that use it skip, except under CI=true, where they fail.

    def test_something(keycloak):
        access_token = keycloak.token("ann", "ann-password")["access_token"]
"""
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.servers import free_port, unavailable

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup-keycloak.sh"
REALM_FILE = ROOT / "config" / "keycloak" / "kyb-realm.json"
REALM = "kyb"
# The demo users of the realm file: username -> password.
USERS = {"ann": "ann-password", "bob": "bob-password"}
FRONTEND_CLIENT_ID = "kyb-frontend"
# The realm file's development default (${KYB_FRONTEND_CLIENT_SECRET:...}); the fixture
# starts Keycloak without that variable, so this is the secret in force.
FRONTEND_CLIENT_SECRET = "kyb-dev-frontend-secret"
CLI_CLIENT_ID = "kyb-cli"
AUDIENCE = "kyb-backend"
START_TIMEOUT = float(os.environ.get("KYB_KEYCLOAK_START_TIMEOUT", "600"))


@dataclass
class Keycloak:
    """A running Keycloak: where it is, and the realm's clients and demo users."""

    url: str  # http://127.0.0.1:PORT
    management_url: str  # http://127.0.0.1:MANAGEMENT_PORT (health: /health/ready)
    home: Path  # its files: data/h2 (database), keycloak.log
    start_seconds: float
    realm: str = REALM
    frontend_client_id: str = FRONTEND_CLIENT_ID
    frontend_client_secret: str = FRONTEND_CLIENT_SECRET
    cli_client_id: str = CLI_CLIENT_ID
    audience: str = AUDIENCE
    users: dict = field(default_factory=lambda: dict(USERS))
    admin_username: str = "admin"  # master realm, admin console at /admin
    admin_password: str = "admin"

    @property
    def issuer(self):
        return f"{self.url}/realms/{self.realm}"

    @property
    def discovery_url(self):
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def token_url(self):
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_url(self):
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def authorization_url(self):
        return f"{self.issuer}/protocol/openid-connect/auth"

    @property
    def logout_url(self):
        return f"{self.issuer}/protocol/openid-connect/logout"

    def discovery(self):
        response = requests.get(self.discovery_url, timeout=10)
        response.raise_for_status()
        return response.json()

    def token_response(self, username, password, client_id=CLI_CLIENT_ID, **extra):
        """The raw response of a password grant (for tests of refusals)."""
        data = {"grant_type": "password", "client_id": client_id, "username": username,
                "password": password, "scope": "openid", **extra}
        return requests.post(self.token_url, data=data, timeout=30)

    def token(self, username, password=None, client_id=CLI_CLIENT_ID):
        """The token response (access_token, refresh_token, id_token, expires_in, ...) of a
        password grant; `password` defaults to the demo user's."""
        response = self.token_response(username, password or self.users[username], client_id)
        if response.status_code != 200:
            raise AssertionError(f"Keycloak refused a token for {username}: {response.status_code} {response.text}")
        return response.json()

    def refresh(self, refresh_token, client_id=CLI_CLIENT_ID):
        response = requests.post(self.token_url, data={"grant_type": "refresh_token", "client_id": client_id,
                                                        "refresh_token": refresh_token}, timeout=30)
        response.raise_for_status()
        return response.json()


def _answers(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _log_tail(path, lines=40):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process):
    """TERM to the process group (kc.sh forwards it to the JVM), KILL after 30 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def start_keycloak(home):
    """Start Keycloak with its state in `home`; returns (Keycloak, process) once realm kyb answers."""
    installed = subprocess.run(["bash", str(SETUP), "--installed"]).returncode == 0
    if not installed:
        unavailable(f"Keycloak is not installed: run make setup (or bash {SETUP.relative_to(ROOT)})")
    port, management_port = free_port(), free_port()
    while management_port == port:
        management_port = free_port()
    log_path = home / "keycloak.log"
    # Only the realm file's defaults and the script's options: no KC_* from outside.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("KC_") and not key.startswith("KYB_FRONTEND_")}
    began = time.monotonic()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(["bash", str(SETUP), "--start", str(home / "server"), str(port),
                                    str(management_port)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    server = Keycloak(url=f"http://127.0.0.1:{port}", management_url=f"http://127.0.0.1:{management_port}",
                      home=home, start_seconds=0.0)
    deadline = began + START_TIMEOUT
    while not _answers(server.discovery_url):
        if process.poll() is not None:
            raise RuntimeError(f"Keycloak exited with {process.returncode} before it answered:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"Keycloak did not answer within {START_TIMEOUT:.0f} s:\n{_log_tail(log_path)}")
        time.sleep(0.25)
    server.start_seconds = time.monotonic() - began
    return server, process


_STARTS = []  # (seconds, how) of the servers this session started, for the summary line


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory):
    """A real Keycloak for the whole session (see the module's docstring)."""
    home = tmp_path_factory.mktemp("keycloak")
    server, process = start_keycloak(home)
    how = "from the warm template" if "from the warm template" in _log_tail(home / "keycloak.log", 1000) else "cold"
    _STARTS.append((server.start_seconds, how))
    try:
        yield server
    finally:
        _stop(process)


def pytest_terminal_summary(terminalreporter):
    for seconds, how in _STARTS:
        terminalreporter.write_line(f"keycloak: realm kyb answered {seconds:.1f} s after the start ({how})")
