"""publisher.client: at-least-once delivery against a stub aggregator on 127.0.0.1."""

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from publisher.client import (
    AggregatorClient,
    GaveUp,
    Interrupted,
    Rejected,
    backoff_delay,
    parse_retry_after,
)
from publisher.generator import EventGenerator
from tests.polling import wait_for
from tests.servers import free_port
from tests.stub_aggregator import Scripted, StubAggregator


@pytest.fixture
def stub():
    with StubAggregator() as stub:
        yield stub


@pytest.fixture
def batch():
    return EventGenerator(topics=3, seed=1).next_round(20, 0).events


def fast_client(url, **kwargs):
    """Backoff in milliseconds, so retry tests do not wait for real."""
    return AggregatorClient(url, backoff_base=0.001, backoff_cap=0.01, **kwargs)


def in_thread(function, *args):
    executor = ThreadPoolExecutor(max_workers=1)
    future = executor.submit(function, *args)
    executor.shutdown(wait=False)
    return future


def test_it_posts_a_batch_and_returns_what_was_accepted(stub, batch):
    with fast_client(stub.url) as client:
        result = client.publish(batch)
    assert (result.accepted, result.attempts, result.maybe_landed) == (20, 1, 0)
    [request] = stub.publishes
    assert request.path == "/publish"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == batch


def test_it_posts_a_single_event_as_one_object(stub, batch):
    with fast_client(stub.url) as client:
        assert client.publish(batch[0]).accepted == 1
    assert json.loads(stub.publishes[0].body) == batch[0]


def test_it_posts_an_already_encoded_body_as_is(stub, batch):
    body = json.dumps(batch).encode()
    with fast_client(stub.url) as client:
        assert client.publish(body).accepted == 20
    assert stub.publishes[0].body == body


def test_it_reuses_one_keep_alive_connection(stub, batch):
    with fast_client(stub.url) as client:
        for event in batch[:5]:
            client.publish(event)
        client.stats()
    assert len({request.client_port for request in stub.recorded}) == 1


def test_it_sends_the_api_key_only_when_set(stub, batch):
    with fast_client(stub.url, api_key="s3cret") as client:
        client.publish(batch)
    with fast_client(stub.url) as client:
        client.publish(batch)
    with_key, without_key = stub.publishes
    assert with_key.headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in without_key.headers


@pytest.mark.parametrize("status", [503, 429])
def test_it_retries_the_same_body_after_a_503_or_429_with_retry_after(stub, batch, status):
    stub.script.append(Scripted(status, {"Retry-After": "0"}))
    with fast_client(stub.url) as client:
        result = client.publish(batch)
    assert (result.accepted, result.attempts) == (20, 2)
    assert result.maybe_landed == 0  # the aggregator refused the first attempt outright
    first, second = stub.publishes
    assert first.body == second.body
    assert stub.stats()["unique_processed"] == 20


def test_it_waits_at_least_as_long_as_retry_after_asks(stub, batch):
    stub.script.append(Scripted(503, {"Retry-After": "1"}))
    with fast_client(stub.url) as client:
        started = time.monotonic()
        client.publish(batch)
    assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_is_retried_and_counted_as_possibly_landed(stub, batch, status):
    # The first attempt was stored before the error: the retry is a real duplicate.
    stub.script.append(Scripted(status, commit=True))
    with fast_client(stub.url) as client:
        result = client.publish(batch)
    assert (result.attempts, result.maybe_landed) == (2, 1)
    stats = stub.stats()
    assert (stats["unique_processed"], stats["duplicate_dropped"]) == (20, 20)


def test_it_retries_until_the_aggregator_comes_up(batch, caplog):
    port = free_port()
    with fast_client(f"http://127.0.0.1:{port}") as client:
        future = in_thread(client.publish, batch)
        wait_for(
            lambda: any("failed (ConnectionError" in r.getMessage() for r in caplog.records),
            message="a refused attempt",
        )
        with StubAggregator(port=port) as stub:
            result = future.result(timeout=120)
            assert stub.stats()["unique_processed"] == 20
    assert result.attempts >= 2
    assert result.maybe_landed == 0  # a refused connection carries nothing


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_are_a_bug_in_the_request_and_not_retried(stub, batch, status):
    stub.script.append(Scripted(status))
    with fast_client(stub.url) as client, pytest.raises(Rejected) as raised:
        client.publish(batch)
    assert raised.value.status == status
    assert "scripted" in str(raised.value)
    assert len(stub.publishes) == 1


def test_with_max_retries_it_gives_up(stub, batch):
    stub.script.extend([Scripted(503)] * 3)
    with fast_client(stub.url, max_retries=2) as client, pytest.raises(GaveUp) as raised:
        client.publish(batch)
    assert raised.value.attempts == 3
    assert len(stub.publishes) == 3


def test_the_stop_event_interrupts_the_wait_before_a_retry(stub, batch):
    stub.script.append(Scripted(503, {"Retry-After": "3600"}))
    stop = threading.Event()
    with fast_client(stub.url, stop=stop) as client:
        future = in_thread(client.publish, batch)
        wait_for(lambda: stub.publishes, message="the first attempt")
        stop.set()
        with pytest.raises(Interrupted) as raised:
            future.result(timeout=120)  # a generous deadline; Retry-After asked for an hour
    assert (raised.value.attempts, raised.value.maybe_landed) == (1, 0)
    assert len(stub.publishes) == 1


def test_the_stop_event_never_abandons_a_request_in_flight(stub, batch):
    arrived, release = threading.Event(), threading.Event()

    def hold(number):
        arrived.set()
        release.wait(120)

    stub.on_publish = hold
    stop = threading.Event()
    with fast_client(stub.url, stop=stop) as client:
        future = in_thread(client.publish, batch)
        wait_for(arrived.is_set, message="the request to arrive")
        stop.set()
        release.set()
        assert future.result(timeout=120).accepted == 20
    assert stub.stats()["unique_processed"] == 20


def test_stats_returns_the_aggregator_counters(stub, batch):
    with fast_client(stub.url) as client:
        client.publish(batch)
        stats = client.stats()
    assert stats["received"] == stats["unique_processed"] + stats["duplicate_dropped"] + stats["queued"]
    assert stats["unique_processed"] == 20


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    rng = random.Random(0)
    for attempt in range(1, 12):
        step = min(30.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, None, base=0.5, cap=30.0, rng=rng) for _ in range(50)]
        assert all(step / 2 <= delay <= step for delay in delays)
        assert len(set(delays)) > 1


def test_retry_after_wins_when_it_asks_for_longer():
    rng = random.Random(0)
    assert backoff_delay(1, 10.0, base=0.5, cap=30.0, rng=rng) == 10.0
    assert backoff_delay(8, 0.0, base=0.5, cap=30.0, rng=rng) >= 15.0


def test_parse_retry_after_takes_seconds_or_an_http_date():
    now = datetime(2026, 11, 26, 15, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 26 Nov 2026 15:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 26 Nov 2026 14:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
