import os
import threading

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from events import consumer as consumer_module
from events.auth import forget_keys_configured
from events.consumer import Consumer
from tests.servers import AggregatorServer, ServiceDatabase


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On PostgreSQL, a test database of this run's own.

    Several checkouts may test against one server at once; with Django's
    default name (test_<name>) each run would drop the others' database.
    """
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """Skip the consumer's per-round close_old_connections() inside a test's transaction.

    Django's test client does the same for requests: closing the connection
    there would end the test's transaction (on PostgreSQL it closes for real).
    """
    close_old_connections = consumer_module.close_old_connections

    def close_unless_in_test_transaction():
        if not connection.in_atomic_block:
            close_old_connections()

    # Its own patch, so that a test's monkeypatch.undo() leaves it in place.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(consumer_module, "close_old_connections", close_unless_in_test_transaction)
        yield


@pytest.fixture(autouse=True)
def _fresh_api_key_state():
    # A key a test created is rolled back with its transaction, but the
    # process's "keys configured" answer would outlive it.
    forget_keys_configured()
    yield
    forget_keys_configured()


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
    """An empty database for real processes, on the engine the suite runs on."""
    database = ServiceDatabase(tmp_path)
    yield database
    database.drop()


@pytest.fixture
def aggregator_server(tmp_path, service_database):
    """A real gunicorn server (with its in-process consumer) on an empty database."""
    server = AggregatorServer(tmp_path, database_url=service_database.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_aggregator(aggregator_server):
    """The base URL of a real aggregator server."""
    return aggregator_server.url
