"""The consumer loop: batching, stopping, and surviving database errors."""

import threading

import pytest
from django.db import DatabaseError, connection, connections
from django.test.utils import CaptureQueriesContext

from events import consumer as consumer_module
from events.consumer import Consumer
from events.models import Event, IntakeBatch
from tests.factories import events
from tests.polling import wait_for


def run_in_thread(consumer: Consumer, stop: threading.Event) -> None:
    """As events.background runs it: the thread's connections close when it ends."""
    try:
        consumer.run(stop)
    finally:
        connections.close_all()


@pytest.mark.django_db
def test_it_drains_the_queue_in_batches_of_about_the_configured_size(publish, monkeypatch):
    for _ in range(5):
        publish(events(3))
    calls = []
    real = consumer_module.process_next_batch

    def spy(*, max_events):
        calls.append(IntakeBatch.objects.count())
        return real(max_events=max_events)

    monkeypatch.setattr(consumer_module, "process_next_batch", spy)
    Consumer(batch_events=6, poll_interval=0.01).run(threading.Event(), until_drained=True)
    # 5 batches of 3 events, at most 6 events a transaction: 2 + 2 + 1, then an empty look.
    assert calls == [5, 3, 1, 0]
    assert Event.objects.count() == 15


@pytest.mark.django_db
def test_a_batch_larger_than_the_limit_is_still_taken_whole(publish):
    publish(events(20))
    consumer = Consumer(batch_events=5, poll_interval=0.01)
    consumer.run(threading.Event(), until_drained=True)
    assert consumer.unique == 20


@pytest.mark.django_db
def test_the_consumers_page_cache_setting_applies_to_sqlite_only(publish, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "CONSUMER_CACHE_MIB": 3}
    publish(events(2))
    with CaptureQueriesContext(connection) as queries:
        Consumer(batch_events=100, poll_interval=0.01).run(threading.Event(), until_drained=True)
    assert Event.objects.count() == 2
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            assert cursor.fetchone()[0] == -3 * 1024
    else:  # PostgreSQL has no page cache per connection: nothing is sent for it
        assert not [query for query in queries.captured_queries if "cache_size" in query["sql"]]


@pytest.mark.django_db
def test_a_set_stop_event_ends_the_loop_before_any_work(publish):
    publish(events(3))
    stop = threading.Event()
    stop.set()
    Consumer(batch_events=100, poll_interval=0.01).run(stop)
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_it_backs_off_after_a_database_error_and_then_recovers(publish, monkeypatch):
    publish(events(4))
    real = consumer_module.process_next_batch
    failures = []
    waits = []

    class RecordingStop(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)  # the back-off, without spending it
            return self.is_set()

    stop = RecordingStop()

    def flaky(*, max_events):
        if not failures:
            failures.append(1)
            raise DatabaseError("database went away")
        stored = real(max_events=max_events)
        stop.set()  # recovered: end the run
        return stored

    monkeypatch.setattr(consumer_module, "process_next_batch", flaky)
    consumer = Consumer(batch_events=100, poll_interval=0.01)
    consumer.run(stop)
    assert waits == [1.0]
    assert consumer.unique == 4


@pytest.mark.django_db
def test_a_drain_raises_a_database_error_instead_of_retrying(publish, monkeypatch):
    publish(events(2))

    def broken(*, max_events):
        raise DatabaseError("database went away")

    monkeypatch.setattr(consumer_module, "process_next_batch", broken)
    with pytest.raises(DatabaseError):
        Consumer(batch_events=100, poll_interval=0.01).run(threading.Event(), until_drained=True)


@pytest.mark.django_db(transaction=True)
def test_a_running_consumer_picks_up_new_work_and_stops_when_asked(publish):
    stop = threading.Event()
    consumer = Consumer(batch_events=100, poll_interval=0.01)
    thread = threading.Thread(target=run_in_thread, args=(consumer, stop))
    thread.start()
    try:
        publish(events(5))
        wait_for(lambda: consumer.unique == 5, message="the consumer to store 5 events")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


@pytest.mark.django_db
def test_each_stored_batch_counts_toward_the_next_wal_checkpoint(publish, monkeypatch):
    # The test database has no log of its own (in memory); pretend it has one.
    monkeypatch.setattr(consumer_module.db, "has_write_ahead_log", lambda: True)
    batch = events(4)
    for _ in range(3):
        publish(batch)  # once new, then twice again: 8 duplicates
    consumer = Consumer(batch_events=8, poll_interval=0.01)
    told = []
    monkeypatch.setattr(consumer._checkpointer, "stored", told.append)
    consumer.run(threading.Event(), until_drained=True)
    assert told == [8, 4]  # unique and duplicate events alike: each grew the log
