"""The Stats counters: publishes and the consumers add to rows of their own."""

import threading

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from events import counters
from events.models import Stats
from events.routers import intake_alias
from tests.factories import events
from tests.servers import requires_postgresql

# How long the open consumer transaction below waits for the publish at most.
HOLD_DEADLINE = 60.0


@pytest.mark.django_db
def test_publishes_and_consumers_add_to_shards_of_their_own(publish, drain, stats, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "COUNTER_SHARDS": 2}
    batch = events(6, topic="counters.split")
    for item in batch + batch[:2]:
        assert publish(item).status_code == 202  # one transaction each, spread over the shards
    drain(batch_events=1)

    # Publishes count in the intake queue's database (on SQLite a file of its own), consumers in the store's.
    rows = [
        row
        for database in {intake_alias(), DEFAULT_DB_ALIAS}
        for row in Stats.objects.using(database)
        .filter(topic="counters.split")
        .values_list("shard", "received", "unique_processed", "duplicate_dropped")
    ]
    publishers = {shard for shard, received, _, _ in rows if received}
    processors = {shard for shard, _, unique, duplicates in rows if unique or duplicates}
    assert publishers and publishers <= {0, 1}
    assert processors and processors <= {2, 3}
    totals = stats()
    assert (totals["received"], totals["unique_processed"], totals["duplicate_dropped"]) == (8, 6, 2)


@requires_postgresql()
@pytest.mark.django_db(transaction=True)
def test_a_publish_does_not_wait_for_a_consumer_transaction_counting_its_topic(publish, settings):
    # One shard of each kind: before they were apart, the publish's row was
    # the consumer's, locked until the consumer's transaction ended.
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "COUNTER_SHARDS": 1}
    counting, release, committed = threading.Event(), threading.Event(), threading.Event()

    def consumer_transaction():
        try:
            with transaction.atomic():
                counters.add_processed({"counters.busy": (1, 0)})
                counting.set()
                release.wait(HOLD_DEADLINE)
            committed.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=consumer_transaction)
    holder.start()
    try:
        assert counting.wait(HOLD_DEADLINE)
        assert publish(events(3, topic="counters.busy")).status_code == 202
        assert not committed.is_set(), "the publish waited for the consumer's transaction"
    finally:
        release.set()
        holder.join(HOLD_DEADLINE)
    assert committed.is_set()
