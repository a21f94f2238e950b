"""The intake queue's encoding: what goes in comes out in the form the database stores."""

import json
import uuid

import msgspec
import pytest
import zstandard
from django.db import connection

from events import counters, intake
from events.models import IntakeBatch
from events.validation import parse_events
from tests.factories import event


def validated(*sent: dict) -> list:
    return parse_events(json.dumps(list(sent)).encode(), max_events=100)


@pytest.mark.django_db
def test_events_come_back_in_database_form():
    event_id = uuid.UUID("7f1c7c1e-4a7e-4c55-9a0e-2f1f8e0b6c11")
    sent = [
        event("queue.t", event_id=str(event_id).upper(), timestamp="2026-11-26T13:00:00.000001+01:00"),
        event("queue.t", timestamp="2026-11-26T12:00:00Z", payload={"b": [1, {"c": None}], "a": "é"}),
    ]

    first, second = intake.decode(intake.encode(validated(*sent)))

    stored_id = str(event_id) if connection.features.has_native_uuid_field else event_id.hex
    assert first == ("queue.t", stored_id, "2026-11-26 12:00:00.000001", sent[0]["source"], '{"n": 1}')
    # The payload's JSON text exactly as sent: spacing, key order, escapes.
    assert second[2:] == ("2026-11-26 12:00:00", sent[1]["source"], '{"b": [1, {"c": null}], "a": "\\u00e9"}')


@pytest.mark.django_db
def test_rows_queued_as_arrays_by_earlier_versions_still_decode():
    # Before the queue held objects it held [topic, event_id, timestamp, source, payload] arrays.
    legacy = zstandard.ZstdCompressor().compress(
        msgspec.json.encode([["old.t", "7f1c7c1e4a7e4c559a0e2f1f8e0b6c11", "2026-11-26 12:00:00", "svc-a", {"n": 1}]])
    )

    assert intake.decode(legacy) == [
        ("old.t", "7f1c7c1e4a7e4c559a0e2f1f8e0b6c11", "2026-11-26 12:00:00", "svc-a", '{"n":1}')
    ]


@pytest.mark.django_db(transaction=True)
def test_publishes_committed_together_from_an_event_loop_share_rows_of_bounded_size(monkeypatch):
    monkeypatch.setattr(intake, "MAX_ROW_EVENTS", 3)
    publishes = [
        validated(event("queue.a"), event("queue.a")),
        validated(event("queue.b")),
        validated(event("queue.c")),
    ]
    sent_ids = [str(e.event_id) for events in publishes for e in events]

    intake._write_as_one_row(publishes)

    rows = IntakeBatch.objects.order_by("id")
    # 2 + 1 fill the first row; the third publish would overflow it and starts the next.
    assert [row.event_count for row in rows] == [3, 1]
    stored = [uuid.UUID(row[1]) for batch in rows for row in intake.decode(bytes(batch.body))]
    assert [str(event_id) for event_id in stored] == sent_ids
    received = {topic: counts.received for topic, counts in counters.per_topic().items()}
    assert received == {"queue.a": 2, "queue.b": 1, "queue.c": 1}
