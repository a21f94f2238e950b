"""Retention: old events are deleted in small transactions, late copies stay duplicates, counters stay exact."""

import math
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from events.models import Event, PrunedEvent
from events.retention import RetentionPolicy, _ChunkSize, _Pace, prune, topic_matches
from loggregator_site.env import env_retention
from tests.factories import event

DAY = 86400


def at_age(days: float) -> str:
    return (timezone.now() - timedelta(days=days)).isoformat()


def assert_exact(stats):
    assert stats["received"] == stats["unique_processed"] + stats["duplicate_dropped"] + stats["queued"]
    assert stats["stored"] == stats["unique_processed"] - stats["pruned"] == Event.objects.count()


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("debug.>", "debug.x", True),
        ("debug.>", "debug.x.y", True),
        ("debug.>", "debug", False),
        ("debug.*", "debug.x", True),
        ("debug.*", "debug.x.y", False),
        ("*.eu.created", "orders.eu.created", True),
        ("orders.eu", "orders.eu.created", False),
        (">", "anything.at.all", True),
    ],
)
def test_topic_patterns_match_segments(pattern, topic, matches):
    assert topic_matches(pattern, topic) is matches


def test_the_retention_setting_reads_a_default_and_overrides_in_order(monkeypatch):
    monkeypatch.setenv("LOGGREGATOR_RETENTION", "7d, debug.>=1d, debug.audit.*=forever, metrics.*=90m")
    default, overrides = env_retention("LOGGREGATOR_RETENTION")
    policy = RetentionPolicy(default, overrides)
    assert policy.retention("orders.eu") == 7 * DAY
    assert policy.retention("debug.x.y") == DAY
    assert policy.retention("metrics.cpu") == 90 * 60
    # The first match wins: debug.> comes before debug.audit.*.
    assert policy.retention("debug.audit.x") == DAY
    assert policy.tombstone_lifetime("debug.x") == 2 * DAY
    assert RetentionPolicy(DAY, (), dedup_horizon=3 * DAY).tombstone_lifetime("a") == 4 * DAY
    assert RetentionPolicy(None, (("a.>", None),)).keeps_everything
    now = timezone.now()
    assert RetentionPolicy(DAY).events_due_before("a", now) == now - timedelta(days=1)
    assert RetentionPolicy(DAY, dedup_horizon=math.inf).tombstones_due_before("a", now) is None  # horizon forever


@pytest.mark.parametrize("value", ["7", "7y", "0d", "debug.>=soon", "debug..x=1d", "a.>.b=1d"])
def test_a_bad_retention_stops_the_service_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("LOGGREGATOR_RETENTION", value)
    with pytest.raises(ImproperlyConfigured, match="LOGGREGATOR_RETENTION"):
        env_retention("LOGGREGATOR_RETENTION")


@pytest.mark.django_db
def test_prune_deletes_only_events_older_than_their_topics_retention(publish, drain, stats):
    old, young = event("orders.eu", timestamp=at_age(3)), event("orders.eu", timestamp=at_age(1))
    debug_young = event("debug.x", timestamp=at_age(1.5 / 24))  # past its 1 h, within its tombstone's 2 h
    kept_forever = event("audit.x", timestamp=at_age(300))
    publish([old, young, debug_young, kept_forever])
    drain()

    report = prune(RetentionPolicy(2 * DAY, (("debug.>", 3600), ("audit.>", None))), chunk_events=1)

    assert report.events == Counter({"orders.eu": 1, "debug.x": 1})  # audit.x: kept forever
    remaining = set(Event.objects.values_list("topic", "event_id"))
    assert {(e["topic"], str(e["event_id"])) for e in (young, kept_forever)} == {
        (topic, str(event_id)) for topic, event_id in remaining
    }
    current = stats()
    assert (current["unique_processed"], current["pruned"], current["stored"]) == (4, 2, 2)
    assert current["topics"] == ["audit.x", "orders.eu"]  # debug.x has nothing stored any more
    assert PrunedEvent.objects.count() == 2
    assert_exact(current)


@pytest.mark.django_db
def test_a_copy_of_a_pruned_event_is_a_duplicate_within_the_horizon(publish, drain, stats, api):
    original = event("orders.eu", timestamp=at_age(3))
    publish([original])
    drain()
    prune(RetentionPolicy(2 * DAY))

    publish([original, original])  # late copies, after the event was deleted
    drain()

    current = stats()
    assert (current["unique_processed"], current["duplicate_dropped"], current["stored"]) == (1, 2, 0)
    assert api.get("/events", {"topic": "orders.eu"}).json()["events"] == []
    assert_exact(current)


@pytest.mark.django_db
def test_after_the_horizon_a_copy_is_stored_again_and_pruned_again(publish, drain, stats):
    original = event("orders.eu", timestamp=at_age(3))
    publish([original])
    drain()
    policy = RetentionPolicy(2 * DAY, dedup_horizon=DAY)
    prune(policy)
    assert prune(policy).tombstones.total() == 0  # 3 days old: still within 2 + 1 days

    prune(policy, now=timezone.now() + timedelta(days=1))  # a day later the tombstone expires
    assert not PrunedEvent.objects.exists()
    publish([original])
    drain()
    assert stats()["unique_processed"] == 2  # the documented rule: counted as new once more

    assert prune(policy).events.total() == 1
    assert_exact(stats())


@pytest.mark.django_db
def test_dry_run_counts_what_is_due_and_changes_nothing(publish, drain, stats, settings, capsys):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "RETENTION": (2 * DAY, ()), "DEDUP_HORIZON": None}
    publish([event("a.x", timestamp=at_age(3)), event("a.x", timestamp=at_age(4)), event("b.x", timestamp=at_age(1))])
    drain()
    before = stats()

    call_command("prune", "--dry-run")
    assert "a.x: would delete 2 events" in capsys.readouterr().out
    assert stats() | {"uptime": 0} == before | {"uptime": 0}
    assert Event.objects.count() == 3 and not PrunedEvent.objects.exists()

    call_command("prune")
    assert "Total: deleted 2 events" in capsys.readouterr().out
    assert stats()["stored"] == 1


@pytest.mark.django_db
def test_prune_refuses_when_everything_is_kept(settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "RETENTION": (None, ())}
    with pytest.raises(CommandError, match="keeps every event"):
        call_command("prune")


def test_chunks_grow_and_shrink_toward_the_target_lock_hold(settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PRUNE_CHUNK_EVENTS": 1000, "PRUNE_CHUNK_SECONDS": 0.05}
    size = _ChunkSize.for_prune(None)
    assert size.rows == 100  # a cautious first chunk

    size.update(100, 0.001)  # far quicker than the target: at most double per chunk
    assert size.rows == 200
    size.update(200, 0.2)  # 1 ms per event: 50 fit in 50 ms
    assert size.rows == 50
    size.update(10, 0.5)  # a short last chunk says nothing about the time per event
    assert size.rows == 50
    for _ in range(10):
        size.update(size.rows, 0.0)
    assert size.rows == 1000  # never above PRUNE_CHUNK_EVENTS


def test_a_given_chunk_size_stays_fixed():
    size = _ChunkSize.for_prune(7)
    size.update(7, 100.0)
    assert size.rows == 7


@pytest.mark.django_db(transaction=True)
def test_adaptive_chunks_prune_everything_due_and_count_exactly(publish, drain, stats, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PRUNE_CHUNK_EVENTS": 300}
    publish([event("bulk.old", timestamp=at_age(3)) for _ in range(1000)] + [event("bulk.new", timestamp=at_age(1))])
    drain()

    report = prune(RetentionPolicy(2 * DAY))

    assert report.events == Counter({"bulk.old": 1000})
    current = stats()
    assert (current["pruned"], current["stored"], PrunedEvent.objects.count()) == (1000, 1, 1000)
    assert_exact(current)


class RecordingStop(threading.Event):
    def __init__(self):
        super().__init__()
        self.waits = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return False


@pytest.mark.django_db
def test_a_paced_pass_rests_while_ahead_of_its_schedule_and_not_when_behind():
    stop = RecordingStop()
    pace = _Pace(due=100, within=10.0, stop=stop)
    pace.rest(10, 0.0)  # a tenth done at once: about a second ahead
    assert stop.waits[-1] > 0.5

    pace.started -= 60  # as if the chunks had taken a minute: behind
    pace.rest(10, 0.0)
    assert stop.waits[-1] == 0.0
