"""The Django admin: staff browse events and counters, and can change neither."""

import pytest
from django.contrib.auth.models import User

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
    rows = page.context["cl"].result_list
    assert [(r.topic, r.received_sum, r.unique_sum, r.duplicate_sum) for r in rows] == [("s.one", 8, 6, 2)]


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
