import gc
import os
import subprocess
import sys
import threading

import pytest
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import override_settings
from rest_framework.test import APIClient

from events import store
from events.auth import forget_keys_configured
from events.backpressure import backlog
from events.consumer import Consumer
from tests.servers import POSTGRESQL_ONLY, PROJECT_DIR, Processes, ServiceDatabase

# Fixtures that give a test a database: the Django test database, or one for real processes.
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "service_database",
    "collected_static",  # the browser tests' servers
}


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="Run only the tests that use a database: scripts/test's PostgreSQL pass, "
        "after the SQLite pass ran them all.",
    )


def uses_database(item: pytest.Item) -> bool:
    return (
        item.get_closest_marker("django_db") is not None
        or not DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        or any(mark.kwargs.get("reason") == POSTGRESQL_ONLY for mark in item.iter_markers("skipif"))
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        _allow_every_database(item)
    if not config.getoption("database_tests_only"):
        return
    deselected = [item for item in items if not uses_database(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if uses_database(item)]


def _allow_every_database(item: pytest.Item) -> None:
    """A test with the Django test database may use all of them: on a SQLite file the intake queue has its own.

    (events.routers.) pytest-django allows only `default` unless a test's
    django_db marker names more.
    """
    marker = item.get_closest_marker("django_db")
    if marker is not None and "databases" not in marker.kwargs:
        item.add_marker(pytest.mark.django_db(*marker.args, **marker.kwargs, databases="__all__"), append=False)
    elif marker is None and {"db", "transactional_db"} & set(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.django_db(databases="__all__"), append=False)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On PostgreSQL, a test database of this run's own.

    Several checkouts may test against one server at once; with Django's
    default name (test_<name>) each run would drop the others' database.
    """
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def _static_files_not_collected(tmp_path_factory):
    """Pages rendered in this process need no collectstatic: plain names, an empty STATIC_ROOT.

    The hashed, compressed files of production are tested from a real
    collectstatic (the `collected_static` fixture).
    """
    plain = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES=plain, STATIC_ROOT=tmp_path_factory.mktemp("static-not-collected")):
        yield


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory):
    """A STATIC_ROOT filled by `manage.py collectstatic`, as a deployment's (DEBUG off)."""
    static_root = tmp_path_factory.mktemp("static")
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "collectstatic-only", "STATIC_ROOT": str(static_root)}
    command = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"]
    subprocess.run(command, cwd=PROJECT_DIR, env=env, check=True)
    return static_root


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """Never let close_old_connections() close a connection inside a test's transaction.

    The consumer calls it every round, and a WSGI app called directly (as
    schemathesis does) at every request; Django's test client avoids the
    latter by disconnecting it. Inside the transaction it would close the
    connection, which on PostgreSQL really ends the test's transaction.
    """
    close_if_obsolete = BaseDatabaseWrapper.close_if_unusable_or_obsolete

    def close_unless_in_a_transaction(self):
        if not self.in_atomic_block:
            close_if_obsolete(self)

    # Its own patch, so that a test's monkeypatch.undo() leaves it in place.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseWrapper, "close_if_unusable_or_obsolete", close_unless_in_a_transaction)
        yield


@pytest.fixture(autouse=True)
def _fresh_api_key_state():
    # A key a test created is rolled back with its transaction, but the
    # process's "keys configured" answer would outlive it.
    forget_keys_configured()
    yield
    forget_keys_configured()


@pytest.fixture(autouse=True)
def _fresh_backlog_estimate():
    # Each test's database starts with its own backlog.
    backlog.forget()
    yield


@pytest.fixture(autouse=True)
def _unfrozen_heap():
    # run_consumer freezes the objects of its process (loggregator_site.startup_heap):
    # in the test process, that would keep every test's garbage from being collected.
    yield
    gc.unfreeze()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def publish(api):
    """POST a body to /publish as JSON."""

    def _publish(body, **extra):
        return api.post("/publish", body, format="json", **extra)

    return _publish


@pytest.fixture
def drain():
    """Run the real consumer until the queue is empty (background work made synchronous)."""

    def _drain(batch_events: int = 5000) -> Consumer:
        consumer = Consumer(batch_events=batch_events, poll_interval=0.01)
        consumer.run(threading.Event(), until_drained=True)
        return consumer

    return _drain


@pytest.fixture
def store_queue_drained(monkeypatch):
    """Past each process's one look for batches that older versions queued in the store's database (events.store)."""
    monkeypatch.setattr(store, "_store_queue_drained", True)


@pytest.fixture
def stats(api):
    def _stats() -> dict:
        response = api.get("/stats")
        assert response.status_code == 200
        return response.json()

    return _stats


@pytest.fixture(scope="session", autouse=True)
def _drop_service_databases():
    yield
    ServiceDatabase.drop_all()


@pytest.fixture
def service_database(tmp_path):
    """A migrated, empty database for real processes, on the engine the suite runs on."""
    database = ServiceDatabase(tmp_path)
    yield database
    database.drop()


@pytest.fixture
def processes(tmp_path, service_database):
    """Start real servers and consumers: `processes.server(...)`, `processes.consumer(server, ...)`.

    They share the test's service_database, and are stopped when the test ends.
    """
    started = Processes(tmp_path, service_database)
    yield started
    started.close()


@pytest.fixture
def aggregator_server(processes):
    """A real gunicorn server (with its in-process consumer) on an empty database."""
    return processes.server()


@pytest.fixture
def live_aggregator(aggregator_server):
    """The base URL of a real aggregator server."""
    return aggregator_server.url
