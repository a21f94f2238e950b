"""events.publish_fast_path: which publishes the event loop answers itself, and that it answers as the view does.

The routing is tested with the ASGI application alone (the commit replaced by
a recorder); the answers, durability and refusals through real gunicorn.
"""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest

from events import auth, backpressure, intake
from events.publish_fast_path import MAX_BODY_BYTES, PublishFastPath
from harness.processes import PROJECT_DIR, manage
from tests import event_loops
from tests.factories import event, events
from tests.polling import wait_for
from tests.traffic import assert_exact


class Downstream:
    """The ASGI application behind the fast path (Django's, in the service): records what reached it."""

    def __init__(self):
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"from downstream"})


@pytest.fixture
def enqueued(monkeypatch):
    """The events the fast path commits, instead of committing them."""
    committed: list[list] = []

    async def record(events):
        committed.append(events)

    monkeypatch.setattr(intake, "enqueue_from_event_loop", record)
    return committed


@pytest.fixture
def admission(monkeypatch):
    """What events.admission would know without a query: by default, no key exists and the backlog is small."""

    class Admission:
        keys_known_absent = True
        backlog_known_under = True

    monkeypatch.setattr(auth, "keys_known_absent", lambda: Admission.keys_known_absent)
    monkeypatch.setattr(backpressure.backlog, "known_under", lambda limit: Admission.backlog_known_under)
    return Admission


def call(
    body: bytes, *, method="POST", path="/publish", chunks: int = 1, lose_after: int | None = None, **headers: str
) -> tuple[dict | None, Downstream]:
    """Send one request through PublishFastPath; the response (status, headers, body) and the downstream app.

    With `lose_after`, the client disconnects after that many of the body's `chunks`.
    """
    headers = {"host": "testserver", "content-type": "application/json", "content-length": str(len(body)), **headers}
    headers = {name.replace("_", "-"): value for name, value in headers.items() if value is not None}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
    }
    size = -(-len(body) // chunks) or 1
    parts = [body[start : start + size] for start in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]
    messages = messages[:lose_after]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    downstream = Downstream()
    event_loops.run(PublishFastPath(downstream)(scope, receive, send))
    if not sent:
        return None, downstream
    response = {
        "status": sent[0]["status"],
        "headers": {name.decode(): value.decode() for name, value in sent[0]["headers"]},
        "body": b"".join(message.get("body", b"") for message in sent[1:]),
    }
    return response, downstream


def test_a_valid_single_event_is_committed_and_accepted_without_the_view(enqueued, admission):
    published = event("fast.single")
    response, downstream = call(json.dumps(published).encode(), chunks=3)
    assert response["status"] == 202
    assert json.loads(response["body"]) == {"accepted": 1}
    assert downstream.bodies == []
    assert [[(e.topic, str(e.event_id)) for e in batch] for batch in enqueued] == [
        [("fast.single", published["event_id"])]
    ]


def test_a_small_batch_is_accepted_whole(enqueued, admission):
    response, downstream = call(json.dumps(events(3, "fast.batch")).encode())
    assert json.loads(response["body"]) == {"accepted": 3}
    assert [len(batch) for batch in enqueued] == [3] and downstream.bodies == []


def test_an_invalid_body_goes_to_the_view_whole_and_nothing_is_committed(enqueued, admission):
    broken = {**event("fast.broken"), "timestamp": "yesterday"}
    body = json.dumps([event("fast.broken"), broken]).encode()
    response, downstream = call(body, chunks=4)
    assert response["status"] == 299
    assert downstream.bodies == [body]
    assert enqueued == []


BODY = json.dumps(event("fast.elsewhere")).encode()


@pytest.mark.parametrize(
    ("case", "request_options"),
    [
        ("another method", {"method": "PUT"}),
        ("another path", {"path": "/publish/"}),
        ("an API key", {"authorization": "Bearer lgr_anything"}),
        ("a compressed body", {"content_encoding": "gzip"}),
        ("another media type", {"content_type": "text/plain"}),
        ("no declared length", {"content_length": None, "transfer_encoding": "chunked"}),
        ("a host not allowed", {"host": "evil.example"}),
    ],
)
def test_requests_with_something_else_to_decide_go_to_the_view(enqueued, admission, case, request_options):
    response, downstream = call(BODY, **request_options)
    assert response["status"] == 299, case
    assert downstream.bodies == [BODY]
    assert enqueued == []


def test_a_body_over_the_fast_paths_size_goes_to_the_view(enqueued, admission):
    large = json.dumps([event("fast.large", payload={"text": "x" * 1000}) for _ in range(70)]).encode()
    assert len(large) > MAX_BODY_BYTES
    response, downstream = call(large)
    assert response["status"] == 299 and downstream.bodies == [large] and enqueued == []


@pytest.mark.parametrize("unknown", ["keys_known_absent", "backlog_known_under"])
def test_when_admission_needs_a_query_the_view_decides(enqueued, admission, unknown):
    setattr(admission, unknown, False)
    response, downstream = call(BODY)
    assert response["status"] == 299 and downstream.bodies == [BODY] and enqueued == []


def test_with_a_rate_limit_the_view_decides(enqueued, admission, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PUBLISH_RATE": "100/s"}
    response, downstream = call(BODY)
    assert response["status"] == 299 and downstream.bodies == [BODY] and enqueued == []


def test_a_failed_commit_is_not_answered_as_accepted(monkeypatch, admission):
    async def fail(events):
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(intake, "enqueue_from_event_loop", fail)
    # The server answers 500 for an application that raises before answering.
    with pytest.raises(RuntimeError, match="the database is gone"):
        call(BODY)


def test_a_client_gone_before_its_body_arrived_gets_nothing_and_nothing_is_committed(enqueued, admission):
    response, downstream = call(BODY, chunks=2, lose_after=1)
    assert response is None and downstream.bodies == [] and enqueued == []


# --- Through gunicorn, as production runs it ------------------------------------

IGNORED_HEADERS = {"date", "server", "content-length"}


def comparable_headers(response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items() if name.lower() not in IGNORED_HEADERS}


def test_the_event_loops_answer_is_the_views_and_both_are_stored_exactly_once(aggregator_server):
    fast = event("fast.compare")
    answered_fast = aggregator_server.publish(fast)
    # gzip always goes to the view.
    by_view = event("fast.compare")
    answered_by_view = aggregator_server.session.post(
        f"{aggregator_server.url}/publish",
        data=gzip.compress(json.dumps(by_view).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=60,
    )
    assert (answered_fast.status_code, answered_fast.json()) == (202, {"accepted": 1})
    assert (answered_by_view.status_code, answered_by_view.json()) == (202, {"accepted": 1})
    assert comparable_headers(answered_fast) == comparable_headers(answered_by_view)

    for _ in range(3):  # at least once: the duplicates are counted, not stored
        assert aggregator_server.publish(fast).status_code == 202
    stats = aggregator_server.wait_until_processed(received=5)
    assert_exact(stats, unique=2, duplicates=3)


def test_an_invalid_small_publish_is_refused_by_the_view_and_nothing_counted(aggregator_server):
    refused = aggregator_server.publish([event("fast.refused"), {**event("fast.refused"), "source": 7}])
    assert refused.status_code == 400
    assert refused.json()["item"] == 1 and refused.json()["field"] == "source"
    assert aggregator_server.publish(event("fast.after")).status_code == 202
    stats = aggregator_server.wait_until_processed(received=1)
    assert_exact(stats, unique=1, duplicates=0)


def test_a_key_created_elsewhere_closes_the_fast_path_within_the_keys_ttl(aggregator_server):
    assert aggregator_server.publish(event("fast.open")).status_code == 202
    created = subprocess.run(
        manage("api_keys", "create", "fleet"),
        cwd=PROJECT_DIR,
        env=aggregator_server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip()
    # Each worker learns of the key within KEYS_CONFIGURED_TTL; every worker must refuse by then.
    wait_for(
        lambda: all(aggregator_server.publish(event("fast.closed")).status_code == 401 for _ in range(8)),
        deadline=10 * auth.KEYS_CONFIGURED_TTL,
        message="publishes without a key to be refused",
    )
    keyed = aggregator_server.publish(event("fast.keyed"), headers={"Authorization": f"Bearer {key}"})
    assert keyed.status_code == 202
