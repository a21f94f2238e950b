"""GET /stats: counters kept beside the data, exact at every moment."""

import pytest

from events.store import process_next_batch
from tests.factories import events


def assert_invariant(stats):
    assert stats["received"] == stats["unique_processed"] + stats["duplicate_dropped"] + stats["queued"]


@pytest.mark.django_db
def test_an_empty_service_reports_zeros(stats):
    current = stats()
    assert current | {"uptime": 0} == {
        "received": 0,
        "unique_processed": 0,
        "duplicate_dropped": 0,
        "queued": 0,
        "stored": 0,
        "pruned": 0,
        "topics": [],
        "uptime": 0,
    }
    assert isinstance(current["uptime"], float) and current["uptime"] >= 0


@pytest.mark.django_db
def test_received_grows_at_acceptance_and_processing_moves_queued_to_the_totals(publish, drain, stats):
    batch = events(10, topic="b.x") + events(5, topic="a.x")
    publish(batch)
    publish(batch[:4])
    before = stats()
    assert before["received"] == 19
    assert before["queued"] == 19
    assert before["topics"] == []  # nothing is stored yet
    assert_invariant(before)

    drain(batch_events=5)
    after = stats()
    assert after["received"] == 19
    assert after["unique_processed"] == 15
    assert after["duplicate_dropped"] == 4
    assert after["queued"] == 0
    assert after["topics"] == ["a.x", "b.x"]
    counts = ("received", "unique_processed", "duplicate_dropped", "queued")
    assert all(type(after[name]) is int for name in counts), after  # 19, never 19.0
    assert_invariant(after)


@pytest.mark.django_db
def test_the_invariant_holds_between_every_consumer_batch(publish, stats):
    batch = events(12)
    for chunk in (batch[:5], batch[3:9], batch[6:], batch):
        publish(chunk)
    assert_invariant(stats())
    while process_next_batch(max_events=4):
        assert_invariant(stats())
    assert stats()["unique_processed"] == 12


@pytest.mark.django_db
def test_a_refused_batch_counts_nothing(publish, stats):
    batch = events(3)
    batch[2]["payload"] = "not an object"
    assert publish(batch).status_code == 400
    assert stats()["received"] == 0


@pytest.mark.django_db
def test_stats_reads_counters_not_events(api, publish, drain, django_assert_max_num_queries):
    publish(events(200))
    drain()
    with django_assert_max_num_queries(1) as queries:
        api.get("/stats")
    assert "events_event" not in queries.captured_queries[0]["sql"]
