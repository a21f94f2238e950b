"""There is new work: intake.enqueue announces each commit in-process; Consumer.stop() ends an idle loop at once."""

import threading

import msgspec
import pytest
from django.db import connections, transaction

from events import background, intake, wakeup
from events.consumer import Consumer
from events.routers import intake_alias
from events.validation import parse_events
from tests.factories import events
from tests.polling import wait_for

# Longer than any deadline below: only the in-process announcement can wake the consumer in time.
NEVER = 3600.0


def validated(count: int):
    return parse_events(msgspec.json.encode(events(count)), max_events=count)


@pytest.mark.django_db(transaction=True)
def test_a_committed_enqueue_is_announced_and_a_rolled_back_one_is_not():
    wakeup.new_work.clear()
    with pytest.raises(RuntimeError), transaction.atomic(using=intake_alias()):
        intake.enqueue(validated(2))
        raise RuntimeError("roll it back")
    assert not wakeup.new_work.is_set()

    intake.enqueue(validated(2))
    assert wakeup.new_work.is_set()


@pytest.mark.django_db(transaction=True)
def test_a_consumer_from_settings_wakes_on_this_process_s_publishes_and_stops_when_asked(publish):
    consumer = Consumer.from_settings(poll_interval=NEVER, linger=0.0)

    def run():
        try:
            consumer.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert publish(events(3)).status_code == 202
        wait_for(lambda: consumer.unique == 3, deadline=60, message="the announcement to wake the consumer")
    finally:
        consumer.stop()
        thread.join(60)
    assert not thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_the_web_process_consumer_marks_this_process_as_consuming_while_it_runs(settings):
    # While it runs, this process's publishes need not NOTIFY other processes (events.wakeup).
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "CONSUMER_CHILD_PROCESS": False}
    assert not wakeup.local_consumer.is_set()
    background.start_consumer_thread()
    try:
        wait_for(wakeup.local_consumer.is_set, message="the consumer to start")
    finally:
        background.stop_consumer_thread()
    assert not wakeup.local_consumer.is_set()
