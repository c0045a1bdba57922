"""Real servers for the tests: FerretDB (or a MongoDB given by MONGODB_URI) and redis-server.

Each runs on a free loopback port with its data in a temporary directory.
"""
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FERRETDB_VERSION = "v1.24.2"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kyb"


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message):
    """A test whose tool is missing fails under CI=true (nothing may skip there), skips elsewhere."""
    pytest.fail(message) if IN_CI else pytest.skip(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process=None, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def ferretdb_binary():
    path = Path(os.environ.get("KYB_FERRETDB", CACHE / f"ferretdb-{FERRETDB_VERSION}" / "ferretdb"))
    if not path.exists():
        raise RuntimeError(f"FerretDB not found at {path}: run `make setup` (it builds it with go install)")
    return path


class Server:
    """A process started from `argv` that listens on `port`; can be stopped and started again."""

    def __init__(self, argv, port, log_path):
        self.argv, self.port, self.log_path = argv, port, log_path
        self.process = None

    env = None
    cwd = Path(__file__).resolve().parents[1]

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)
        log.close()
        wait_for_port(self.port, self.process)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def ferretdb(data_dir, port=None):
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(ferretdb_binary()), "--handler=sqlite", f"--sqlite-url=file:{data_dir}/",
            f"--listen-addr=127.0.0.1:{port}", "--telemetry=disable", "--log-level=warn",
            "--debug-addr=-", f"--state-dir={data_dir}"]
    return Server(argv, port, data_dir / "ferretdb.log")


def redis(data_dir, port=None):
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: run `make setup` (it installs Debian's redis-server)")
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(data_dir)]
    return Server(argv, port, data_dir / "redis.log")


def gunicorn(app, env, log_path, workers=3):
    """`app:create_app()` under gunicorn with `workers` workers, as the images run it (not started)."""
    import sys

    port = free_port()
    full_env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY=str(workers), **env)
    argv = [str(Path(sys.executable).with_name("gunicorn")), "-c", "config/gunicorn.conf.py", f"{app}:create_app()"]
    server = Server(argv, port, log_path)
    server.env = full_env
    server.url = f"http://127.0.0.1:{port}"
    return server


class OtlpCollector:
    """An OTLP/HTTP receiver on a free loopback port, in place of a collector: keeps what it
    is sent, as (path, content type, body), and answers 200 (the tracing tests, the bench)."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
