"""The Django admin: staff browse events and counters, and can change neither."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.admin_paginator import LimitedCountPaginator
from events.models import Event
from tests.factories import event, events


@pytest.fixture
def staff_client(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.force_login(admin)
    return client


@pytest.mark.django_db
def test_the_admin_needs_a_staff_login(client):
    response = client.get("/admin/events/event/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_staff_browse_events_newest_first_and_filter_by_topic(staff_client, publish, drain):
    older = event("shop.orders", timestamp="2026-01-01T00:00:00Z")
    newer = event("shop.orders", timestamp="2026-01-02T00:00:00Z")
    publish([older, newer, event("shop.refunds")])
    drain()

    page = staff_client.get("/admin/events/event/")
    assert page.status_code == 200
    listed = [str(e.event_id) for e in page.context["cl"].result_list]
    assert listed.index(newer["event_id"]) < listed.index(older["event_id"])

    filtered = staff_client.get("/admin/events/event/", {"topic": "shop.refunds"})
    assert [e.topic for e in filtered.context["cl"].result_list] == ["shop.refunds"]
    assert b"shop.orders" in filtered.content  # offered as a filter choice


@pytest.mark.django_db
def test_staff_search_events_by_event_id_and_source(staff_client, publish, drain):
    wanted = event(source="billing")
    publish([wanted, *events(3)])
    drain()
    by_id = staff_client.get("/admin/events/event/", {"q": wanted["event_id"]})
    assert [str(e.event_id) for e in by_id.context["cl"].result_list] == [wanted["event_id"]]
    by_source = staff_client.get("/admin/events/event/", {"q": "billing"})
    assert [e.source for e in by_source.context["cl"].result_list] == ["billing"]


@pytest.mark.django_db
def test_events_are_read_only_in_the_admin(staff_client, publish, drain):
    publish(event())
    drain()
    stored = Event.objects.get()
    assert staff_client.get("/admin/events/event/add/").status_code == 403
    detail = staff_client.get(f"/admin/events/event/{stored.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert staff_client.post(f"/admin/events/event/{stored.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_staff_see_one_stats_row_per_topic_with_shards_summed(staff_client, publish, drain, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "COUNTER_SHARDS": 3}
    batch = events(6, topic="s.one")
    for item in batch + batch[:2]:
        publish(item)  # one transaction each, spread over the shards
    drain(batch_events=1)
    page = staff_client.get("/admin/events/stats/")
    assert page.status_code == 200
    assert rendered_columns(page, "total_received", "total_unique_processed", "total_duplicate_dropped") == [
        ["8", "6", "2"]
    ]


def rendered_columns(page, *columns: str) -> list[list[str]]:
    """The changelist's cells of these columns, row by row, as the page shows them."""
    html = page.content.decode()
    cells = [re.findall(rf'<t[dh] class="field-{column}[^"]*">(.*?)</t[dh]>', html) for column in columns]
    return [[re.sub(r"<[^>]+>", "", cell) for cell in row] for row in zip(*cells, strict=True)]


def now_text(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).isoformat().replace("+00:00", "Z")


@pytest.mark.django_db
def test_staff_filter_events_by_source_and_time_window(staff_client, publish, drain):
    recent = event("shop.orders", source="billing", timestamp=now_text(timedelta(minutes=5)))
    hours_ago = event("shop.orders", source="billing", timestamp=now_text(timedelta(hours=3)))
    days_ago = event("shop.orders", source="checkout", timestamp=now_text(timedelta(days=3)))
    publish([recent, hours_ago, days_ago])
    drain()

    def listed(**query):
        page = staff_client.get("/admin/events/event/", query)
        assert page.status_code == 200
        return [str(e.event_id) for e in page.context["cl"].result_list]

    assert listed(within="15m") == [recent["event_id"]]
    assert listed(within="24h") == [recent["event_id"], hours_ago["event_id"]]
    assert listed(within="7d", source="checkout") == [days_ago["event_id"]]
    choices = staff_client.get("/admin/events/event/").content
    assert b"?source=billing" in choices and b"?source=checkout" in choices
    assert b"Last 15 minutes" in choices


@pytest.mark.django_db
def test_the_event_list_shows_timestamps_with_seconds_and_time_zone(staff_client, publish, drain):
    publish(event(timestamp="2026-03-04T05:06:07.123456Z"))
    drain()
    page = staff_client.get("/admin/events/event/")
    assert rendered_columns(page, "at") == [["2026-03-04 05:06:07.123456+00:00"]]


@pytest.mark.django_db
def test_no_changelist_query_counts_every_event(staff_client, publish, drain, monkeypatch):
    monkeypatch.setattr(LimitedCountPaginator, "count_limit", 3)
    publish(events(5, source="billing"))
    drain()
    for query in ({}, {"source": "billing"}, {"topic": "orders.eu.created"}, {"q": "billing"}, {"p": "2"}):
        with CaptureQueriesContext(connection) as queries:
            page = staff_client.get("/admin/events/event/", query)
        assert page.status_code == 200
        counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "events_event" in q["sql"]]
        assert counts and all("LIMIT" in sql.upper() for sql in counts), counts
        if query != {"p": "2"}:
            assert b"the newest 3 of more events" in page.content, query
    # Pages reach as deep as the count: the newest three, in pages of two.
    monkeypatch.setattr("events.admin.EventAdmin.list_per_page", 2)
    second = staff_client.get("/admin/events/event/", {"p": "2"})
    assert len(second.context["cl"].result_list) == 1


@pytest.mark.django_db
def test_an_event_page_shows_the_payload_indented_and_links_to_the_explorer(staff_client, publish, drain):
    published = event("shop.orders", payload={"order": {"id": 42, "lines": [1, 2]}})
    publish(published)
    drain()
    stored = Event.objects.get()
    page = staff_client.get(f"/admin/events/event/{stored.pk}/change/").content.decode()
    assert '<pre class="payload">{\n  &quot;order&quot;: {\n    &quot;id&quot;: 42,' in page
    link = re.search(r'<a href="(/\?[^"]+)">Open this event in the explorer</a>', page).group(1)
    query = parse_qs(urlsplit(link.replace("&amp;", "&")).query)
    assert query["topic"] == ["shop.orders"]
    assert query["open"] == [published["event_id"]]
    assert query["since"][0] < query["until"][0]


@pytest.mark.django_db
def test_a_logged_in_user_who_is_not_staff_is_kept_out(client):
    client.force_login(User.objects.create_user("someone", "someone@example.com", "pw-for-tests"))
    for page in ("/admin/", "/admin/events/event/", "/admin/events/apikey/"):
        response = client.get(page)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_staff_can_revoke_an_api_key_but_not_create_one(staff_client):
    from events.models import ApiKey

    key = ApiKey.objects.create(name="svc", prefix="lgr_abc", key_hash="0" * 64, scopes="publish")
    assert staff_client.get("/admin/events/apikey/add/").status_code == 403
    page = staff_client.get(f"/admin/events/apikey/{key.pk}/change/")
    assert page.status_code == 200
    assert b"0000000000000000" in page.content  # the hash, shown read-only


@pytest.mark.django_db
def test_every_page_the_admin_benchmark_measures_is_a_page_that_answers(staff_client, monkeypatch):
    from benchmark.admin_pages import PAGES
    from benchmark.stored_events import load_events

    load_events(400, topics=3, days=1)
    monkeypatch.setattr("events.admin.EventAdmin.list_per_page", 1)  # 400 pages: the deep ones exist
    newest = Event.objects.order_by("-timestamp", "-id").first()
    values = {"topic": newest.topic, "source": newest.source, "event_id": newest.event_id, "pk": newest.pk}
    for name, url in PAGES.items():
        page = staff_client.get(url.format(**values))
        assert page.status_code == 200, name
        if "cl" in page.context:
            assert page.context["cl"].result_list, name
