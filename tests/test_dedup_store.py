"""The write path: the (topic, event_id) constraint decides what is stored; first copy wins."""

import uuid

import psycopg
import pytest
from django.db import DatabaseError, connection

from events import store
from events.models import Event, IntakeBatch
from tests.factories import event, events
from tests.servers import postgresql_params, requires_postgresql


@pytest.mark.django_db
def test_duplicates_inside_one_batch_are_stored_once(publish, drain, stats):
    first = event(payload={"copy": 1})
    resend = {**first, "timestamp": "2026-02-02T00:00:00Z", "payload": {"copy": 2}}
    publish([first, *events(3), resend, resend])
    drain()

    assert Event.objects.count() == 4
    stored = Event.objects.get(event_id=first["event_id"])
    assert stored.payload == {"copy": 1}  # the first copy wins
    assert stats()["duplicate_dropped"] == 2


@pytest.mark.django_db
def test_duplicates_across_batches_are_stored_once(publish, drain, stats):
    batch = events(50)
    publish(batch)
    drain()
    publish(batch[:20] + events(5))
    drain()

    assert Event.objects.count() == 55
    assert stats() | {"uptime": 0, "topics": []} == {
        "received": 75,
        "unique_processed": 55,
        "duplicate_dropped": 20,
        "queued": 0,
        "stored": 55,
        "pruned": 0,
        "topics": [],
        "uptime": 0,
    }


@pytest.mark.django_db
def test_the_same_event_id_under_two_topics_is_two_events(publish, drain, stats):
    event_id = uuid.uuid4()
    publish([event("a.b", event_id=event_id), event("a.c", event_id=event_id)])
    drain()
    assert Event.objects.filter(event_id=event_id).count() == 2
    assert stats()["duplicate_dropped"] == 0
    assert stats()["topics"] == ["a.b", "a.c"]


@pytest.mark.django_db
def test_uuid_case_and_form_do_not_make_a_new_event(publish, drain, stats):
    event_id = uuid.uuid4()
    publish(event(event_id=str(event_id).upper()))
    publish(event(event_id=str(event_id)))
    publish(event(event_id=event_id.hex))
    drain()
    assert Event.objects.get().event_id == event_id
    assert stats()["unique_processed"] == 1
    assert stats()["duplicate_dropped"] == 2


@pytest.mark.django_db
def test_timestamps_are_stored_in_utc(publish, drain):
    publish(
        [
            event("t", timestamp="2026-03-01T10:00:00+07:00"),
            event("t", timestamp="2026-03-01T03:00:01Z"),
            event("t", timestamp="2026-03-01T03:00:02"),
        ]
    )
    drain()
    stored = [e.timestamp.isoformat() for e in Event.objects.order_by("id")]
    assert stored == ["2026-03-01T03:00:00+00:00", "2026-03-01T03:00:01+00:00", "2026-03-01T03:00:02+00:00"]


@pytest.mark.django_db
def test_small_consumer_batches_still_drop_every_duplicate(publish, drain, stats):
    batch = events(30)
    for item in batch + batch[::3]:
        publish(item)
    consumer = drain(batch_events=7)
    assert (consumer.unique, consumer.duplicates) == (30, 10)
    assert Event.objects.count() == 30
    assert stats()["queued"] == 0


@pytest.mark.django_db
def test_a_failure_mid_batch_rolls_back_everything(publish, drain, stats, monkeypatch):
    publish(events(10))

    def fail(processed):
        raise DatabaseError("disk on fire")

    monkeypatch.setattr(store.counters, "add_processed", fail)
    with pytest.raises(DatabaseError):
        store.process_next_batch(max_events=100)

    # The inserts and the claim rolled back with the counters: nothing is lost.
    assert Event.objects.count() == 0
    assert IntakeBatch.objects.count() == 1
    assert stats()["queued"] == 10

    monkeypatch.undo()
    drain()
    assert Event.objects.count() == 10
    assert stats()["unique_processed"] == 10
    assert stats()["queued"] == 0


@pytest.mark.django_db
def test_a_batch_another_consumer_stores_first_is_not_stored_again(publish, stats, monkeypatch):
    # Where the batch is read before the write lock is taken (SQLite), another
    # consumer may store it in between: the removal from the queue inside the
    # transaction sees that, and the transaction rolls back and looks again.
    # PostgreSQL claims inside the transaction instead (its rows stay locked);
    # without row locks it takes the same path, so the check runs on both.
    monkeypatch.setattr(connection.features, "has_select_for_update_skip_locked", False)
    publish(events(10, topic="first"))
    publish(events(5, topic="second"))
    real_claim = store.intake.claim
    claims = []

    def claim_then_lose_the_race(max_events, using=None):
        claimed = real_claim(max_events, using)
        claims.append([batch.id for batch in claimed])
        if len(claims) == 1:
            monkeypatch.setattr(store.intake, "claim", real_claim)
            assert store.process_next_batch(max_events=max_events).unique == 10  # the other consumer
            monkeypatch.setattr(store.intake, "claim", claim_then_lose_the_race)
        return claimed

    monkeypatch.setattr(store.intake, "claim", claim_then_lose_the_race)
    stored = store.process_next_batch(max_events=10)

    assert (stored.unique, stored.duplicates) == (5, 0)  # the next batch, not the one taken meanwhile
    assert len(claims) == 2 and claims[0] != claims[1]
    assert Event.objects.count() == 15
    counts = stats()
    assert [counts[name] for name in ("received", "unique_processed", "duplicate_dropped", "queued")] == [15, 15, 0, 0]


@pytest.mark.django_db
def test_process_next_batch_reports_an_empty_queue():
    assert store.process_next_batch(max_events=100) is None


@pytest.mark.django_db
def test_counts_stay_exact_in_a_large_batch_of_mostly_duplicates(publish, drain, stats):
    # The driver's row count over thousands of inserts is what tells new rows from duplicates.
    old = events(3000, topic="big")
    publish(old)
    drain()
    new = events(1500, topic="big")
    publish(old + new + new[:500] + events(7, topic="small"))
    consumer = drain()
    assert (consumer.unique, consumer.duplicates) == (1500 + 7, 3000 + 500)
    assert Event.objects.filter(topic="big").count() == 4500
    assert stats()["duplicate_dropped"] == 3500


@pytest.mark.django_db
def test_the_first_copy_wins_when_its_copy_comes_thousands_of_rows_later(publish, drain, stats):
    # SQLite inserts a topic's rows up to store.ROWS_PER_INSERT at a time: the copies meet in different statements.
    batch = events(2500, topic="big")
    first = batch[0]
    publish([*batch, {**first, "payload": {"copy": 2}}])
    consumer = drain()
    assert (consumer.unique, consumer.duplicates) == (2500, 1)
    assert Event.objects.get(event_id=first["event_id"]).payload == first["payload"]
    assert stats()["duplicate_dropped"] == 1


def test_a_topic_is_inserted_in_full_statements_then_powers_of_two():
    assert store.insert_sizes(0) == []
    assert store.insert_sizes(1) == [1]
    assert store.insert_sizes(store.ROWS_PER_INSERT) == [store.ROWS_PER_INSERT]
    assert store.insert_sizes(2 * store.ROWS_PER_INSERT + 452) == [store.ROWS_PER_INSERT] * 2 + [256, 128, 64, 4]


@pytest.mark.django_db
def test_events_with_one_timestamp_keep_the_order_they_were_published_in(publish, drain, api):
    # Event ids in descending order, so that key order and publish order differ.
    event_ids = sorted((str(uuid.uuid4()) for _ in range(20)), reverse=True)
    publish([event("ties", event_id=event_id, timestamp="2026-04-01T00:00:00Z") for event_id in event_ids])
    drain()
    listed = api.get("/events", {"topic": "ties"}).json()["events"]
    assert [e["event_id"] for e in listed] == event_ids


@pytest.mark.django_db
def test_the_stored_copy_records_the_intake_batch_it_came_in(publish, drain):
    first = event()
    publish(first)
    publish([{**first, "payload": {"copy": 2}}, second := event()])
    earlier, later = IntakeBatch.objects.order_by("id").values_list("id", flat=True)
    drain()
    assert Event.objects.get(event_id=first["event_id"]).intake_batch == earlier
    assert Event.objects.get(event_id=second["event_id"]).intake_batch == later


@requires_postgresql()
@pytest.mark.django_db(transaction=True)
def test_the_first_copy_wins_when_a_later_intake_batch_is_stored_first(publish, drain, stats):
    first = event("race.first", payload={"copy": 1})
    resend = {**first, "timestamp": "2026-02-02T00:00:00Z", "source": "svc-b", "payload": {"copy": 2}}
    publish(first)
    publish([resend, *events(2, topic="race.first")])
    earlier = IntakeBatch.objects.order_by("id").first()

    # Another consumer holds the earlier batch: this one skips it (SKIP
    # LOCKED), stores the later batch and commits first.
    with psycopg.connect(**postgresql_params(connection.settings_dict)) as holder:
        holder.execute("SELECT id FROM events_intakebatch WHERE id = %s FOR UPDATE", [earlier.id])
        assert drain().unique == 3
        assert Event.objects.get(event_id=first["event_id"]).payload == {"copy": 2}
        holder.rollback()
    drain()

    stored = Event.objects.get(event_id=first["event_id"])
    assert (stored.payload, stored.source, stored.intake_batch) == ({"copy": 1}, "svc-a", earlier.id)
    assert stored.timestamp.isoformat() == first["timestamp"].replace("Z", "+00:00")
    assert Event.objects.filter(topic="race.first").count() == 3
    assert stats()["unique_processed"] == 3
    assert stats()["duplicate_dropped"] == 1
