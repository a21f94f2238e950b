"""On PostgreSQL an idle consumer is woken by a notification, whoever published."""

import threading

import pytest
from django.db import connection, connections

from events import wakeup
from events.consumer import Consumer
from tests.factories import events
from tests.polling import wait_for
from tests.servers import requires_postgresql

pytestmark = requires_postgresql()

# Longer than any deadline below: only a notification can wake the consumer in time.
NEVER = 3600.0


def listening_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f"LISTEN {wakeup.CHANNEL}"],
        )
        return cursor.fetchone()[0]


def run_in_thread(consumer: Consumer, stop: threading.Event) -> None:
    try:
        consumer.run(stop)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_an_idle_consumer_wakes_when_a_publish_commits_and_stops_at_once_when_asked(publish):
    stop = threading.Event()
    consumer = Consumer(batch_events=100, poll_interval=NEVER)
    thread = threading.Thread(target=run_in_thread, args=(consumer, stop))
    thread.start()
    try:
        wait_for(lambda: listening_sessions() == 1, message="the consumer to LISTEN")
        assert publish(events(5)).status_code == 202
        wait_for(lambda: consumer.unique == 5, deadline=60, message="the notification to wake the consumer")
    finally:
        stop.set()
        consumer.wakeup.set()
        thread.join(60)
    assert not thread.is_alive()
    # The listening connection closed with the consumer.
    wait_for(lambda: listening_sessions() == 0, message="the listener to close its connection")


@pytest.mark.django_db
def test_a_publish_that_rolls_back_notifies_nobody(publish):
    # Publishing inside the test's transaction, which never commits: PostgreSQL
    # delivers NOTIFY only at commit, so a listener hears nothing.
    with connections["default"].get_new_connection(connections["default"].get_connection_params()) as listener:
        listener.autocommit = True
        listener.execute(f"LISTEN {wakeup.CHANNEL}")
        publish(events(2))
        assert list(listener.notifies(timeout=0.5)) == []
