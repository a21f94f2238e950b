"""GET /metrics: database counters that agree with /stats, and what each process observed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from events.auth import hash_key, new_key
from events.models import ApiKey, IntakeBatch
from tests.factories import event, events


def scrape(api, **extra) -> dict:
    """{(sample name, sorted label items): value} of one scrape."""
    response = api.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    """How much a process-local metric grew (they are shared by every test in this process)."""
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.django_db
def test_the_event_counters_agree_with_stats(publish, drain, stats, api):
    batch = events(30)
    publish(batch)
    publish(batch[:10])
    queued = scrape(api)
    assert value(queued, "loggregator_queue_events") == 40
    assert value(queued, "loggregator_queue_oldest_batch_age_seconds") >= 0
    drain()

    samples, current = scrape(api), stats()
    assert value(samples, "loggregator_events_received_total") == current["received"] == 40
    assert value(samples, "loggregator_events_stored_total") == current["unique_processed"] == 30
    assert value(samples, "loggregator_events_duplicates_dropped_total") == current["duplicate_dropped"] == 10
    assert value(samples, "loggregator_events_pruned_total") == current["pruned"] == 0
    assert value(samples, "loggregator_events_stored_now") == current["stored"] == 30
    assert value(samples, "loggregator_queue_events") == 0
    assert value(samples, "loggregator_queue_oldest_batch_age_seconds") == 0


@pytest.mark.django_db
def test_the_oldest_batch_age_comes_from_the_queue(publish, api):
    publish(events(2))
    IntakeBatch.objects.update(accepted_at=timezone.now() - timedelta(seconds=90))
    assert value(scrape(api), "loggregator_queue_oldest_batch_age_seconds") >= 90


@pytest.mark.django_db
def test_consumer_batches_are_timed_and_sized(publish, drain, api):
    before = scrape(api)
    publish(events(7))
    drain()
    after = scrape(api)
    for name in ("loggregator_consumer_batch_events", "loggregator_consumer_batch_duration_seconds"):
        assert delta(before, after, f"{name}_count") == 1
    assert delta(before, after, "loggregator_consumer_batch_events_sum") == 7


@pytest.mark.django_db
def test_publish_rejections_are_counted_by_reason(publish, api, settings):
    before = scrape(api)
    publish([{"topic": "bad topic"}])  # 400
    api.post("/publish", "x", content_type="text/plain")  # 415
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_BODY_BYTES": 100}
    publish(events(5))  # 413
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_BODY_BYTES": 1 << 20, "MAX_QUEUED_EVENTS": 1}
    assert publish([event()]).status_code == 202
    assert publish([event()]).status_code == 503
    ApiKey.objects.create(name="reader", prefix="lgr_", key_hash=hash_key(new_key()), scopes="read")
    assert publish([event()]).status_code == 401  # keys exist now, and this request has none
    after = scrape(api)

    for reason in ("invalid", "unsupported", "too_large", "backlog_full", "unauthorized"):
        assert delta(before, after, "loggregator_publish_rejected_total", endpoint="publish", reason=reason) == 1
    assert delta(before, after, "loggregator_publish_duration_seconds_count", endpoint="publish") == 6
    assert delta(before, after, "loggregator_http_responses_total", endpoint="publish", status="202") == 1


@pytest.mark.django_db
def test_responses_are_labelled_by_route_never_by_path(api):
    before = scrape(api)
    api.get("/no/such/path/1")
    api.get("/no/such/path/2")
    api.get("/events", {"topic": "a.b"})
    after = scrape(api)
    assert delta(before, after, "loggregator_http_responses_total", endpoint="unmatched", status="404") == 2
    assert delta(before, after, "loggregator_http_responses_total", endpoint="events", status="200") == 1


@pytest.mark.django_db
def test_metrics_can_require_a_read_key(api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PROTECT_METRICS": True}
    assert api.get("/metrics").status_code == 401
    key = new_key()
    ApiKey.objects.create(name="scraper", prefix=key[:8], key_hash=hash_key(key), scopes="read")
    assert value(scrape(api, HTTP_AUTHORIZATION=f"Bearer {key}"), "loggregator_queue_events") == 0
