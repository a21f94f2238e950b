"""POST /publish refuses anything invalid with a 4xx that says what and where, and stores nothing."""

import json

import pytest

from events.models import IntakeBatch, Stats
from tests.factories import event, events


def assert_nothing_accepted():
    assert IntakeBatch.objects.count() == 0
    assert Stats.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "topic",
    ["a", "a.b.c.d.e", "orders.eu.created", "A_1.b2", "x" * 255],
)
def test_it_accepts_valid_topics(publish, topic):
    assert publish(event(topic)).status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize(
    "topic",
    ["", "a.b.c.d.e.f", "a..b", ".a", "a.", "a-b", "a/b", "a b", "a.b\n", "ü", "x" * 256, "x" * 10_000, 5, None],
)
def test_it_rejects_invalid_topics(publish, topic):
    response = publish(event(topic))
    assert response.status_code == 400
    assert response.json()["field"] == "topic"
    assert "topic" in response.json()["detail"]
    assert_nothing_accepted()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "not-a-uuid"),
        ("event_id", ""),
        ("event_id", 12),
        ("timestamp", "yesterday"),
        ("timestamp", "2026-13-01T00:00:00Z"),
        ("timestamp", 1700000000),
        ("timestamp", "0001-01-01T00:30:00+01:00"),  # before year 1 in UTC
        ("timestamp", "9999-12-31T23:30:00-01:00"),  # after year 9999 in UTC
        ("source", ""),
        ("source", "s" * 256),
        ("source", None),
        ("source", "nul\x00byte"),
        ("payload", [1, 2]),
        ("payload", "text"),
        ("payload", None),
        ("payload", 3),
        ("payload", {"nul": "a\x00b"}),
    ],
)
def test_it_rejects_an_invalid_field_and_names_it(publish, field, value):
    body = event()
    body[field] = value
    response = publish(body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["item"] is None  # a single event, not a batch
    assert_nothing_accepted()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["topic", "event_id", "timestamp", "source", "payload"])
def test_it_rejects_a_missing_field(publish, field):
    body = event()
    del body[field]
    response = publish(body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert_nothing_accepted()


@pytest.mark.django_db
def test_timestamps_with_an_offset_are_stored_as_the_same_instant_in_utc(api, publish, drain):
    sent = [
        event("utc.edges", timestamp="0001-01-01T00:30:00-01:00"),
        event("utc.edges", timestamp="2026-06-30T23:59:59.999999-07:30"),
        event("utc.edges", timestamp="9999-12-31T23:30:00+01:00"),
    ]
    assert publish(sent).status_code == 202
    drain()
    listed = api.get("/events", {"topic": "utc.edges"}).json()["events"]
    assert [item["timestamp"] for item in listed] == [
        "0001-01-01T01:30:00Z",
        "2026-07-01T07:29:59.999999Z",
        "9999-12-31T22:30:00Z",
    ]


@pytest.mark.django_db
def test_one_bad_item_refuses_the_whole_batch_and_names_the_item(publish):
    batch = events(10)
    batch[7]["timestamp"] = "not a time"
    response = publish(batch)
    assert response.status_code == 400
    assert response.json()["item"] == 7
    assert response.json()["field"] == "timestamp"
    assert "item 7" in response.json()["detail"]
    assert_nothing_accepted()


@pytest.mark.django_db
def test_a_batch_item_that_is_not_an_object_is_named(publish):
    response = publish([event(), "oops"])
    assert response.status_code == 400
    assert response.json()["item"] == 1
    assert_nothing_accepted()


@pytest.mark.django_db
def test_an_empty_batch_is_refused(publish):
    response = publish([])
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]
    assert_nothing_accepted()


@pytest.mark.django_db
def test_an_empty_body_is_refused(api):
    response = api.post("/publish", b"", content_type="application/json")
    assert response.status_code == 400
    assert_nothing_accepted()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"{not json", b'{"topic": "a"', b"[1,]", b"NaN", b'"a string"', b"null", b"\xff\xfe"])
def test_malformed_json_is_refused(api, body):
    response = api.post("/publish", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert_nothing_accepted()


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_wrong_content_type_is_refused_with_415(api, content_type):
    response = api.post("/publish", b'{"topic": "a"}', content_type=content_type)
    assert response.status_code == 415
    assert_nothing_accepted()


@pytest.mark.django_db
def test_a_batch_over_the_event_limit_is_refused(publish, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_BATCH_EVENTS": 5}
    response = publish(events(6))
    assert response.status_code == 400
    assert "at most 5" in response.json()["detail"]
    assert_nothing_accepted()
    assert publish(events(5)).status_code == 202


@pytest.mark.django_db
def test_a_body_over_the_size_limit_gets_413(api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_BODY_BYTES": 1000}

    body = json.dumps(events(20)).encode()
    assert len(body) > 1000
    response = api.post("/publish", body, content_type="application/json")
    assert response.status_code == 413
    assert "1000-byte limit" in response.json()["detail"]
    assert_nothing_accepted()


@pytest.mark.django_db
def test_a_5000_event_batch_of_3_6_mb_is_accepted(publish):
    payload = {f"field_{i}": "x" * 16 for i in range(24)}  # ~700 bytes an event
    batch = events(5000, payload=payload)
    response = publish(batch)
    assert response.status_code == 202
    assert response.json() == {"accepted": 5000}
    assert IntakeBatch.objects.get().event_count == 5000


@pytest.mark.django_db
@pytest.mark.parametrize("topic", ["a.b\\n", "a.b\\u000a", "a.b\\u000A"])
def test_a_topic_ending_in_an_escaped_newline_is_refused(api, topic):
    body = json.dumps(event()).replace('"orders.eu.created"', f'"{topic}"')
    response = api.post("/publish", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == "topic"
    assert_nothing_accepted()


@pytest.mark.django_db
def test_an_escaped_backslash_before_u0000_is_ordinary_text(publish, drain):
    assert publish(event(payload={"path": "C:\\u0000"})).status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("later", "field"),
    [({"timestamp": "yesterday"}, "timestamp"), ({"payload": [1]}, "payload"), ({"topic": "bad topic"}, "topic")],
)
def test_the_first_bad_item_is_the_one_named_whatever_else_is_wrong_later(publish, later, field):
    batch = [event(), event("no spaces allowed"), event(), {**event(), **later}]
    response = publish(batch)
    assert response.status_code == 400
    assert (response.json()["item"], response.json()["field"]) == (1, "topic")
    assert_nothing_accepted()


@pytest.mark.django_db
def test_a_bad_topic_after_another_bad_field_is_not_the_one_named(publish):
    batch = [event(), {**event(), "timestamp": "yesterday"}, event("no spaces allowed")]
    response = publish(batch)
    assert response.status_code == 400
    assert (response.json()["item"], response.json()["field"]) == (1, "timestamp")
