"""On PostgreSQL an idle consumer is woken by a notification, whoever published."""

import threading

import pytest
from django.db import connection, connections, transaction

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


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("in_a_transaction", [False, True], ids=["one statement", "inside a transaction"])
def test_a_process_with_a_consumer_of_its_own_notifies_the_others_only_now_and_then(
    publish, monkeypatch, in_a_transaction
):
    # A NOTIFY holds a database-wide lock through its commit's WAL flush. This
    # process's consumer hears of each publish in-process; the others, which
    # only share a backlog, at most every NOTICE_INTERVAL.
    def publish_and_check_the_wakeup():
        wakeup.new_work.clear()
        if in_a_transaction:
            with transaction.atomic():
                assert publish(events(2)).status_code == 202
        else:
            assert publish(events(2)).status_code == 202
        assert wakeup.new_work.is_set()

    def notifications(expected: int) -> int:
        heard = len(list(listener.notifies(timeout=5, stop_after=expected))) if expected else 0
        return heard + len(list(listener.notifies(timeout=0.5)))  # and no more

    monkeypatch.setattr(wakeup, "_last_notice", float("-inf"))
    monkeypatch.setattr(wakeup, "NOTICE_INTERVAL", NEVER)
    wakeup.local_consumer.set()
    try:
        with connections["default"].get_new_connection(connections["default"].get_connection_params()) as listener:
            listener.autocommit = True
            listener.execute(f"LISTEN {wakeup.CHANNEL}")
            for _ in range(3):
                publish_and_check_the_wakeup()
            assert notifications(1) == 1  # the first publish's

            monkeypatch.setattr(wakeup, "NOTICE_INTERVAL", 0.0)  # the interval has passed
            publish_and_check_the_wakeup()
            assert notifications(1) == 1

            wakeup.local_consumer.clear()  # no consumer of its own: the others hear of every publish
            monkeypatch.setattr(wakeup, "NOTICE_INTERVAL", NEVER)
            for _ in range(2):
                publish_and_check_the_wakeup()
            assert notifications(2) == 2
    finally:
        wakeup.local_consumer.clear()
