"""Both sides of loggregator_site.threaded_wsgi's 1 MiB buffers, through real gunicorn as production runs it."""

import json
from pathlib import Path

import drf_spectacular_sidecar
import pytest

from loggregator_site.threaded_wsgi import REQUEST_BUFFER_BYTES, RESPONSE_BUFFER_BYTES
from tests.factories import event
from tests.traffic import assert_exact, stored_ids

MAX_BODY_BYTES = 3 * REQUEST_BUFFER_BYTES
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server(processes):
    return processes.server(LOGGREGATOR_MAX_BODY_BYTES=str(MAX_BODY_BYTES))


def batch_of(size: int, topic: str) -> list[dict]:
    """Events with ~1 KB payloads, enough of them for a body of at least `size` bytes."""
    return [event(topic, payload={"text": "x" * 1000}) for _ in range(size // 1000 + 1)]


def test_publishes_over_the_buffer_are_stored_and_over_the_limit_refused_with_413(server):
    small, large = batch_of(1000, "front.small"), batch_of(2 * REQUEST_BUFFER_BYTES, "front.large")
    assert len(json.dumps(large)) > REQUEST_BUFFER_BYTES
    assert server.publish(small).status_code == 202
    assert server.publish(large).json() == {"accepted": len(large)}

    too_large = batch_of(MAX_BODY_BYTES, "front.refused")
    refused = server.publish(too_large)
    assert refused.status_code == 413, refused.text

    stats = server.wait_until_processed(received=len(small) + len(large))
    assert_exact(stats, unique=len(small) + len(large), duplicates=0)
    assert sorted(stored_ids(server, "front.large")) == sorted(e["event_id"] for e in large)
    assert stored_ids(server, "front.refused") == []


def test_a_chunked_publish_within_the_buffer_is_accepted(server):
    body = json.dumps([event("front.chunked") for _ in range(50)]).encode()
    chunks = (body[start : start + 500] for start in range(0, len(body), 500))  # requests sends a generator chunked
    response = server.session.post(f"{server.url}/publish", data=chunks, headers=JSON, timeout=60)
    assert response.json() == {"accepted": 50}
    assert_exact(server.wait_until_processed(received=50), unique=50, duplicates=0)


def test_a_static_file_larger_than_the_response_buffer_arrives_intact(server):
    relative = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
    original = (Path(drf_spectacular_sidecar.__file__).parent / "static" / relative).read_bytes()
    assert len(original) > RESPONSE_BUFFER_BYTES
    response = server.session.get(
        f"{server.url}/static/{relative}", headers={"Accept-Encoding": "identity"}, timeout=60
    )
    assert response.status_code == 200
    assert response.content == original
