"""The benchmark's query workload: its data set and what it knows about the schema."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from benchmark import query_workload
from events.models import Event
from events.query import EventQuery
from events.topic_patterns import parse_pattern
from events.validation import is_valid_topic


def test_the_indexes_whose_ingest_cost_it_measures_are_the_models_own():
    assert set(query_workload.QUERY_INDEXES) <= {index.name for index in Event._meta.indexes}


def test_its_topics_have_one_to_five_segments_and_every_pattern_it_times_matches_some():
    topics = query_workload.TOPICS
    assert len(set(topics)) == 50 and all(is_valid_topic(topic) for topic in topics)
    assert {topic.count(".") + 1 for topic in topics} == {1, 2, 3, 4, 5}
    for _, params, _ in query_workload.queries(("2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")):
        assert parse_pattern(params["topic"]).matching(topics)


@pytest.mark.django_db(transaction=True)
def test_its_loader_writes_events_the_api_reads_in_the_databases_own_form():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    connection.ensure_connection()
    per_topic = query_workload.load(
        connection.connection, 2000, now=now, seed=7, postgres=connection.vendor == "postgresql"
    )
    assert sum(per_topic.values()) == Event.objects.count() == 2000
    rare_day = now - timedelta(days=query_workload.RARE_DAY)
    rare = EventQuery.from_params(
        {
            "topic": query_workload.EXACT,
            "q": query_workload.RARE_WORD,
            "since": rare_day.isoformat(),
            "until": (rare_day + timedelta(days=1)).isoformat(),
        }
    )
    assert len(rare.page(None, 100)[0]) == query_workload.RARE_EVENTS
    # Patterns read their topics from the counters the loader wrote.
    assert len(EventQuery.from_params({"topic": "svc3.>"}).page(None, 5000)[0]) == sum(
        count for topic, count in per_topic.items() if topic.startswith("svc3.")
    )
    assert (
        Event.objects.filter(timestamp__gte=now - timedelta(days=query_workload.DAYS), timestamp__lte=now).count()
        == 2000
    )
