import threading

import pytest
from rest_framework.test import APIClient

from events.auth import forget_keys_configured
from events.consumer import Consumer
from tests.servers import AggregatorServer


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


@pytest.fixture
def aggregator_server(tmp_path):
    """A real gunicorn server (with its in-process consumer) on a fresh SQLite file."""
    server = AggregatorServer(data_dir=tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_aggregator(aggregator_server):
    """The base URL of a real aggregator server."""
    return aggregator_server.url
