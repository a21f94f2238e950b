"""manage.py run_consumer: drains the queue once, or runs until signalled."""

import signal

import pytest
from django.core.management import call_command

from events.models import Event
from tests.factories import events


@pytest.mark.django_db
def test_once_drains_the_queue_and_reports(publish, capsys):
    batch = events(8)
    publish(batch)
    publish(batch[:3])
    call_command("run_consumer", "--once", "--batch-size", "2")
    assert Event.objects.count() == 8
    assert "Stored 8 unique events, dropped 3 duplicates." in capsys.readouterr().out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_running_consumer_drains_a_backlog_then_exits_cleanly_on_a_signal(processes, sig):
    # A server without its in-process consumer: only run_consumer stores events.
    server = processes.server(LOGGREGATOR_INPROCESS_CONSUMER="false")
    consumer = processes.consumer(server)
    batch = events(300)
    assert server.publish(batch).status_code == 202
    assert server.publish(batch[:100]).status_code == 202
    assert server.stats()["queued"] == 400  # nobody consumes yet

    consumer.start()
    stats = server.wait_until_processed()
    assert (stats["unique_processed"], stats["duplicate_dropped"]) == (300, 100)

    assert consumer.stop(sig) == 0
    assert "stopping after the current batch" in consumer.log()
    assert "Stored 300 unique events, dropped 100 duplicates." in consumer.log()
