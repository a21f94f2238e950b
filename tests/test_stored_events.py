"""The direct loader behind the read benchmarks and the browser tests: events stored as the write path would."""

import pytest

from benchmark.stored_events import load_events
from events.admin_filters import distinct_sources
from events.counters import read_totals
from events.models import Event
from publisher.generator import SOURCES


@pytest.mark.django_db
def test_loaded_events_read_back_like_published_ones_with_their_counters(monkeypatch):
    monkeypatch.setattr("benchmark.stored_events.CHUNK_ROWS", 300)  # several chunks
    load_events(1000, topics=7, days=2, seed=1)
    assert Event.objects.count() == 1000
    assert Event.objects.values("topic").distinct().count() == 7
    totals = read_totals()
    assert (totals.received, totals.unique_processed, totals.duplicate_dropped, totals.queued) == (1000, 1000, 0, 0)
    newest = Event.objects.order_by("-timestamp").first()
    assert set(newest.payload) == {"level", "status", "order", "message"}
    assert Event.objects.filter(event_id=newest.event_id).get() == newest
    assert distinct_sources(100) == sorted(SOURCES)
    assert distinct_sources(2) == sorted(SOURCES)[:2]
