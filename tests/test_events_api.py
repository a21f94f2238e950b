"""GET /events: one topic's unique events in timestamp order, page by page."""

import pytest

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
