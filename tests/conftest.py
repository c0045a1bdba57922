"""Fixtures: real FerretDB (or MONGODB_URI) and redis-server for the whole session,
a fresh database per test, and the backend app bound to them."""
import os
import uuid

import pytest
import redis as redis_lib
from pymongo import MongoClient, monitoring

from tests import servers

# Fixtures that start the apps as real gunicorn servers (frontend and end-to-end tests).
pytest_plugins = ["tests.stack", "tests.keycloak"]


def pytest_collection_modifyitems(items):
    """Run the tests on the Kubernetes control plane last: on a cold machine its binaries
    are still being built in the background (scripts/test.sh) while the others run."""
    items.sort(key=lambda item: "control_plane" in item.fixturenames)


class CommandLog(monitoring.CommandListener):
    """Every MongoDB command the process sends, by database, for asserting on DB traffic."""

    def __init__(self):
        self.commands = []

    def started(self, event):
        self.commands.append((event.database_name, event.command_name))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def count(self, database, names=("find", "aggregate")):
        return sum(1 for db, name in self.commands if db == database and name in names)


COMMANDS = CommandLog()
monitoring.register(COMMANDS)


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory):
    """A MongoDB-protocol server: MONGODB_URI if given, else FerretDB started here."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    server = servers.ferretdb(tmp_path_factory.mktemp("ferretdb")).start()
    yield f"mongodb://127.0.0.1:{server.port}/"
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = servers.redis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server):
    return f"redis://127.0.0.1:{redis_server.port}/0"


def database_uri(base_uri, name):
    """`base_uri` pointing at database `name`, its options kept."""
    scheme, rest = base_uri.split("://", 1)
    hosts, _, tail = rest.partition("/")
    options = tail.partition("?")[2]
    return f"{scheme}://{hosts}/{name}" + (f"?{options}" if options else "")


@pytest.fixture
def database_name():
    return f"kyb_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app_config():
    """Settings a test module adds to the app's (override this fixture)."""
    return {}


@pytest.fixture
def app(mongodb_uri, redis_server, redis_url, database_name, app_config):
    """The backend on a fresh database and an empty Redis."""
    from backend import create_app

    if redis_server.process is None:
        redis_server.start()
    client = MongoClient(mongodb_uri)
    redis_lib.Redis.from_url(redis_url).flushdb()
    app = create_app({"MONGODB_URI": database_uri(mongodb_uri, database_name), "REDIS_URL": redis_url,
                      "TESTING": True, "AUTH_DEV_USER_HEADER": True, **app_config})
    yield app
    app.extensions["kyb.mongo"].close()
    client.drop_database(database_name)
    client.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def commands():
    COMMANDS.commands.clear()
    return COMMANDS
