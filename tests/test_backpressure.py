"""Backpressure: over the backlog limit /publish answers 503 + Retry-After and accepts nothing."""

import json
import threading

import pytest

from events import backpressure, counters, intake
from events.models import IntakeBatch
from events.routers import intake_alias
from events.validation import parse_events
from publisher.client import AggregatorClient
from tests.factories import event, events
from tests.polling import wait_for


@pytest.fixture
def backlog_limit(settings):
    def _limit(events: int, retry_after: int = 5):
        settings.LOGGREGATOR = {
            **settings.LOGGREGATOR,
            "MAX_QUEUED_EVENTS": events,
            "BACKPRESSURE_RETRY_AFTER": retry_after,
        }

    return _limit


@pytest.mark.django_db
def test_over_the_limit_publish_answers_503_with_retry_after_and_accepts_nothing(publish, stats, drain, backlog_limit):
    backlog_limit(10, retry_after=7)
    assert publish(events(6)).status_code == 202
    assert publish(events(6)).status_code == 202  # 6 queued < 10: accepted, overshooting to 12

    refused = publish(events(3))
    assert refused.status_code == 503
    assert refused["Retry-After"] == "7"
    assert "12 events are waiting" in refused.json()["detail"]
    assert stats()["received"] == 12
    assert IntakeBatch.objects.count() == 2

    drain()
    assert publish(event()).status_code == 202
    assert stats()["received"] == 13


def another_process_queues(events: int) -> None:
    """Counted as received, as a publish served by another worker is: this process's estimate does not see it."""
    counters.add_received({"other.process": events}, using=intake_alias())


@pytest.mark.django_db
def test_under_half_the_limit_a_recent_count_is_reused_and_from_half_on_every_request_counts(
    publish, backlog_limit, monkeypatch
):
    backlog_limit(10)
    monkeypatch.setattr(backpressure, "RECOUNT_INTERVAL", 3600)  # nothing gets old during the test
    assert publish(event()).status_code == 202  # counted: 0, then its own event added: 1
    another_process_queues(8)  # 9 queued; this process still estimates 1
    assert publish(events(3)).status_code == 202  # 1 < 5: accepted without a count; 4
    assert publish(event()).status_code == 202  # 4 < 5: the overshoot the soft limit allows; 5
    refused = publish(event())  # 5: half the limit, so it counts
    assert refused.status_code == 503
    assert "13 events are waiting" in refused.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_the_intake_writer_counts_again_before_the_count_expires(backlog_limit, monkeypatch):
    # Publishes on the event loop may not query: if the count expired, they
    # would go to the view until one of them counted again.
    backlog_limit(1000)
    monkeypatch.setattr(backpressure, "RECOUNT_INTERVAL", 3600)
    another_process_queues(7)

    # What the intake writer thread does for each group (test_group_commit
    # shows the work after a group runs), here in the test's thread: a writer
    # thread's connection would outlive the test database.
    assert intake._async_group_commit._after_group is intake._refresh_backlog_count

    intake._write_as_one_row([one_validated_event()])
    intake._refresh_backlog_count()

    assert backpressure.backlog.known_under(1000)
    assert backpressure.backlog.queued(1000) == 8  # the other process's 7 and the one committed
    another_process_queues(5)
    intake._write_as_one_row([one_validated_event()])
    intake._refresh_backlog_count()
    assert backpressure.backlog.queued(1000) == 8  # a young count is not repeated


def one_validated_event() -> list:
    return parse_events(json.dumps([event()]).encode(), max_events=1)


@pytest.mark.django_db
def test_an_old_count_is_counted_again(publish, backlog_limit, monkeypatch):
    backlog_limit(10)
    monkeypatch.setattr(backpressure, "RECOUNT_INTERVAL", 0)
    assert publish(event()).status_code == 202
    another_process_queues(9)
    assert publish(event()).status_code == 503


@pytest.mark.django_db
def test_a_limit_of_zero_means_no_limit(publish, backlog_limit):
    backlog_limit(0)
    for _ in range(5):
        assert publish(events(100)).status_code == 202


@pytest.mark.slow
def test_publishers_back_off_while_the_consumer_is_stopped_and_everything_arrives_once(processes):
    server = processes.server(
        LOGGREGATOR_INPROCESS_CONSUMER="false",
        LOGGREGATOR_MAX_QUEUED_EVENTS="2000",
        LOGGREGATOR_BACKPRESSURE_RETRY_AFTER="1",
    )
    consumer = processes.consumer(server)
    unique = events(8000, topic="bp.flow")
    # Each publisher sends its share, then resends a quarter of it.
    shares = [unique[i::4] for i in range(4)]
    bodies = [share + share[: len(share) // 4] for share in shares]
    results, failures = [], []
    stop = threading.Event()

    def send(body):
        with AggregatorClient(server.url, backoff_base=0.05, backoff_cap=1.0, stop=stop) as client:
            for start in range(0, len(body), 250):
                try:
                    results.append(client.publish(body[start : start + 250]))
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    failures.append(exc)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    try:
        for thread in threads:
            thread.start()
        # The consumer is stopped: the backlog stops near the limit and stays there.
        wait_for(lambda: server.stats()["queued"] >= 2000, message="the backlog to reach its limit")
        refused = server.publish(event("bp.probe"))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        # Overshoot: at most the requests that were checked at the same moment.
        assert server.stats()["queued"] <= 2000 + 4 * 250

        consumer.start()
        for thread in threads:
            thread.join()
        assert not failures
        stats = server.wait_until_processed(received=10_000)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert sum(result.attempts for result in results) > len(results), "no publisher was ever refused"
    assert stats["unique_processed"] == 8000
    assert stats["duplicate_dropped"] == 2000
    assert stats["received"] == 10_000
