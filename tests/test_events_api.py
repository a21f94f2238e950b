"""GET /events: one topic's unique events in timestamp order, page by page."""

import json

import pytest
from rest_framework.renderers import JSONRenderer

from events.models import Event
from tests.factories import event, events


@pytest.mark.django_db
def test_topic_is_required(api):
    response = api.get("/events")
    assert response.status_code == 400
    assert "topic" in response.json()


@pytest.mark.django_db
def test_a_malformed_topic_is_refused(api):
    response = api.get("/events", {"topic": "a..b"})
    assert response.status_code == 400
    assert "topic" in response.json()


@pytest.mark.django_db
def test_an_unknown_topic_is_an_empty_list(api):
    response = api.get("/events", {"topic": "nobody.here"})
    assert response.status_code == 200
    assert response.json() == {
        "topic": "nobody.here",
        "filters": {"topic": "nobody.here", "order": "asc"},
        "events": [],
        "next": None,
    }


@pytest.mark.django_db
def test_it_lists_only_the_topic_asked_for_with_every_field(api, publish, drain):
    wanted = event("a.b", payload={"order": 42, "nested": {"ok": True}})
    publish([wanted, event("a.c"), event("a.b.c")])
    drain()
    response = api.get("/events", {"topic": "a.b"})
    assert response.json()["events"] == [
        {
            "topic": "a.b",
            "event_id": wanted["event_id"],
            "timestamp": wanted["timestamp"],
            "source": "svc-a",
            "payload": {"order": 42, "nested": {"ok": True}},
        }
    ]


@pytest.mark.django_db
def test_events_come_in_timestamp_order_with_ties_in_processing_order(api, publish, drain):
    late = event("t", timestamp="2026-05-01T12:00:00Z")
    tie_first = event("t", timestamp="2026-05-01T11:00:00Z")
    tie_second = event("t", timestamp="2026-05-01T11:00:00Z")
    early = event("t", timestamp="2026-05-01T13:00:00+05:00")  # 08:00 UTC
    publish([late, tie_first])
    publish([tie_second, early])
    drain()
    listed = [e["event_id"] for e in api.get("/events", {"topic": "t"}).json()["events"]]
    assert listed == [early["event_id"], tie_first["event_id"], tie_second["event_id"], late["event_id"]]


@pytest.mark.django_db
def test_pages_follow_each_other_without_gaps_or_repeats(api, publish, drain):
    # Many equal timestamps, so pages must split inside a tie.
    batch = [event("p", timestamp=f"2026-06-01T00:00:0{i % 3}Z") for i in range(25)]
    publish(batch)
    drain()
    expected = [e["event_id"] for e in api.get("/events", {"topic": "p"}).json()["events"]]

    seen, url, pages = [], "/events?topic=p&limit=4", 0
    while url:
        page = api.get(url).json()
        seen += [e["event_id"] for e in page["events"]]
        url, pages = page["next"], pages + 1
    assert seen == expected
    assert sorted(seen) == sorted(e["event_id"] for e in batch)
    assert pages == 7  # 6 full pages and a last one of 1


@pytest.mark.django_db
def test_the_last_full_page_has_no_next(api, publish, drain):
    publish(events(4, topic="q"))
    drain()
    page = api.get("/events", {"topic": "q", "limit": 4}).json()
    assert len(page["events"]) == 4
    assert page["next"] is None


@pytest.mark.django_db
def test_the_default_page_is_1000_events(api, publish, drain):
    publish(events(1001, topic="big"))
    drain()
    page = api.get("/events", {"topic": "big"}).json()
    assert len(page["events"]) == 1000
    assert page["next"]


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "-1", "10001", "ten", "1.5", ""])
def test_a_bad_limit_is_refused(api, limit):
    response = api.get("/events", {"topic": "a", "limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor", ["garbage!", "bm90IGEgY3Vyc29y", "MjAyNi0wMS0wMXxhYmM", "MjAyNi0wMS0wMVQwMDowMDowMHwx"]
)
def test_a_bad_cursor_is_refused(api, cursor):
    response = api.get("/events", {"topic": "a", "cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()


@pytest.mark.django_db
def test_only_processed_events_are_listed(api, publish, drain):
    publish(events(3, topic="later"))
    assert api.get("/events", {"topic": "later"}).json()["events"] == []
    drain()
    assert len(api.get("/events", {"topic": "later"}).json()["events"]) == 3


@pytest.mark.django_db
def test_the_body_is_what_drfs_renderer_writes_for_the_same_events(api, publish, drain):
    # The page is encoded from the stored rows, payloads as their stored text:
    # the same JSON values as the decoded events rendered by DRF, compact, and
    # with the line separators JavaScript refuses escaped as DRF escapes them.
    payloads = [
        {"text": 'é ü 日本 \u2028 \u2029 "quoted" \\ / \t', "nested": {"list": [1, 2.5, -0.0, None, True]}},
        {"big": 2**63, "small": 1e-7, "exponent": 1.5e300, "empty": {}, "none": []},
    ]
    sent = [
        event("body.check", payload=payload, timestamp=f"2026-05-01T12:00:0{n}.12Z")
        for n, payload in enumerate(payloads)
    ]
    publish(sent)
    drain()
    response = api.get("/events", {"topic": "body.check"})
    assert response["Content-Type"] == "application/json"
    body = response.content
    assert "\u2028".encode() not in body and b"\\u2028" in body and b"\\u2029" in body
    assert b": " not in body and b", " not in body  # compact
    page = json.loads(body)
    assert page["events"][0]["payload"] == payloads[0]  # (PostgreSQL's jsonb writes 1.5e300 in full: an integer)
    stored = list(Event.objects.filter(topic="body.check").order_by("timestamp", "id"))
    expected = {
        "topic": "body.check",
        "filters": {"topic": "body.check", "order": "asc"},
        "events": [
            {
                "topic": e.topic,
                "event_id": e.event_id,
                "timestamp": e.timestamp,
                "source": e.source,
                "payload": e.payload,
            }
            for e in stored
        ],
        "next": None,
    }
    assert page == json.loads(JSONRenderer().render(expected))
