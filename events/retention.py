"""Retention: delete events older than their topic's retention, in small transactions.

LOGGREGATOR_RETENTION sets a default and per-topic-pattern overrides
("7d,debug.>=1d"); an event is due once its `timestamp` is older than its
topic's retention. Each chunk deletes the topic's oldest due events, writes
their tombstones (events.tombstones) and counts them as `pruned`, all in one
transaction, so a kill at any moment loses or double-counts nothing. Chunks
are short (sized to a target time, see _ChunkSize) and, on SQLite, take the
writers' lock (events.db) like any other write, then pass the next turn to
the others: publishes wait for at most one chunk.

Tombstones are themselves deleted once the event is older than its retention
plus the dedup horizon (LOGGREGATOR_DEDUP_HORIZON, by default as long as the
retention). A copy that arrives after that is stored as a new event, counted
in `unique_processed` again, and pruned again at the next pass.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection
from django.utils import timezone

from events import counters, tombstones
from events.db import pass_turn, use_consumer_cache, write_transaction
from events.models import Event, PrunedEvent, Stats


def topic_matches(pattern: str, topic: str) -> bool:
    """NATS-style subjects: `*` matches one segment, a final `>` one or more."""
    wanted, segments = pattern.split("."), topic.split(".")
    if wanted[-1] == ">":
        wanted = wanted[:-1]
        if len(segments) <= len(wanted):
            return False
        segments = segments[: len(wanted)]
    return len(wanted) == len(segments) and all(w in ("*", s) for w, s in zip(wanted, segments))


@dataclass(frozen=True)
class RetentionPolicy:
    """Seconds to keep each topic's events (None: forever), and how long tombstones outlive them."""

    default: float | None = None
    overrides: tuple[tuple[str, float | None], ...] = ()
    # Extra time a pruned event's key is kept; None: as long as the retention.
    dedup_horizon: float | None = None

    @classmethod
    def from_settings(cls) -> RetentionPolicy:
        default, overrides = settings.LOGGREGATOR["RETENTION"]
        return cls(default, overrides, settings.LOGGREGATOR["DEDUP_HORIZON"])

    @property
    def keeps_everything(self) -> bool:
        return self.default is None and all(seconds is None for _, seconds in self.overrides)

    def retention(self, topic: str) -> float | None:
        """The first override whose pattern matches, else the default."""
        for pattern, seconds in self.overrides:
            if topic_matches(pattern, topic):
                return seconds
        return self.default

    def tombstone_lifetime(self, topic: str) -> float | None:
        """Age (by timestamp) after which a pruned event's copy is no longer recognised; None: never."""
        retention = self.retention(topic)
        if retention is None:
            return None
        horizon = retention if self.dedup_horizon is None else self.dedup_horizon
        return retention + horizon

    def events_due_before(self, topic: str, now: datetime) -> datetime | None:
        """The topic's events with an earlier timestamp are due for deletion; None: kept forever."""
        retention = self.retention(topic)
        return None if retention is None else now - timedelta(seconds=retention)

    def tombstones_due_before(self, topic: str, now: datetime) -> datetime | None:
        """The topic's tombstones of events with an earlier timestamp have expired; None: never."""
        lifetime = self.tombstone_lifetime(topic)
        return None if lifetime is None or lifetime == math.inf else now - timedelta(seconds=lifetime)


@dataclass
class PruneReport:
    events: Counter[str] = field(default_factory=Counter)  # per topic
    tombstones: Counter[str] = field(default_factory=Counter)  # expired, per topic


def prune(
    policy: RetentionPolicy | None = None,
    *,
    now: datetime | None = None,
    chunk_events: int | None = None,
    within: float | None = None,
    stop: threading.Event | None = None,
) -> PruneReport:
    """Delete every due event and expired tombstone, a chunk per transaction; stops early when `stop` is set.

    Chunks hold `chunk_events` each if given, else as many as fit in
    LOGGREGATOR_PRUNE_CHUNK_SECONDS of write lock (at most LOGGREGATOR_PRUNE_CHUNK_EVENTS).
    With `within`, the event deletions are spread over about that many seconds (see _Pace).
    """
    policy = policy or RetentionPolicy.from_settings()
    now = now or timezone.now()
    stop = stop or threading.Event()
    topics = _topics()
    event_cutoffs = {topic: cutoff for topic in topics if (cutoff := policy.events_due_before(topic, now))}
    due_events = sum(_due_events(topic, cutoff).count() for topic, cutoff in event_cutoffs.items()) if within else 0
    pace, unpaced = _Pace(due_events, within, stop), _Pace(0, None, stop)
    event_chunks, tombstone_chunks = _ChunkSize.for_prune(chunk_events), _ChunkSize.for_prune(chunk_events)
    report = PruneReport()
    for topic in topics:
        if cutoff := event_cutoffs.get(topic):
            report.events[topic] = _repeat(partial(_prune_chunk, topic, cutoff), event_chunks, pace)
        if cutoff := policy.tombstones_due_before(topic, now):
            report.tombstones[topic] = _repeat(partial(_expire_chunk, topic, cutoff), tombstone_chunks, unpaced)
    return report


class _Pace:
    """Spreads a pass's `due` deletions evenly over `within` seconds; None: as fast as turns allow.

    A pass that deletes as fast as it can takes a large share of the write
    lock, and of the CPU, in a burst, and every publish meanwhile waits longer.
    Spread out, the same work costs each publish little. Between chunks it
    always lets another writer commit first (events.db.pass_turn); a pass
    behind its schedule rests no longer than that, so it still catches up.
    """

    def __init__(self, due: int, within: float | None, stop: threading.Event):
        self.due, self.within, self.stop = due, within, stop
        self.started, self.done = time.monotonic(), 0

    def rest(self, done: int, held: float) -> None:
        self.done += done
        pass_turn(self.stop, longest=held)
        if self.within and self.due:
            on_schedule_at = self.started + self.within * min(1.0, self.done / self.due)
            self.stop.wait(max(0.0, on_schedule_at - time.monotonic()))


class _ChunkSize:
    """How many rows the next chunk deletes: as many as hold the write lock about `target` seconds.

    A bigger chunk deletes each row for less (an index page it dirties is
    written once per commit however many of its entries go); a shorter hold
    keeps publishes from waiting long behind it. Chunks start small and follow
    the time the last full chunk took per row.
    """

    FIRST = 100

    def __init__(self, most: int, target: float | None):
        self.most, self.target = most, target
        self.rows = most if target is None else min(most, self.FIRST)

    @classmethod
    def for_prune(cls, chunk_events: int | None) -> _ChunkSize:
        if chunk_events:  # a fixed size
            return cls(chunk_events, None)
        config = settings.LOGGREGATOR
        return cls(config["PRUNE_CHUNK_EVENTS"], config["PRUNE_CHUNK_SECONDS"])

    def update(self, done: int, held: float) -> None:
        if self.target is None or done < self.rows:
            return  # a fixed size, or a short last chunk: it says little about the time per row
        fits = done * self.target / held if held > 0 else self.most
        # At most doubling per chunk: one quick chunk (a warm cache, an idle machine) is not a trend.
        self.rows = max(1, min(self.most, 2 * self.rows, int(fits)))


def _repeat(chunk, size: _ChunkSize, pace: _Pace) -> int:
    """Run chunk(rows) until it does nothing (or `stop`); the sum of what it did.

    chunk() returns (rows, seconds it held the write lock).
    """
    total = 0
    while not pace.stop.is_set():
        done, held = chunk(size.rows)
        if not done:
            break
        total += done
        size.update(done, held)
        pace.rest(done, held)
    return total


def due(policy: RetentionPolicy | None = None, *, now: datetime | None = None) -> PruneReport:
    """What prune() would delete now, deleting nothing (`manage.py prune --dry-run`)."""
    policy = policy or RetentionPolicy.from_settings()
    now = now or timezone.now()
    report = PruneReport()
    for topic in _topics():
        if cutoff := policy.events_due_before(topic, now):
            report.events[topic] = _due_events(topic, cutoff).count()
        if cutoff := policy.tombstones_due_before(topic, now):
            report.tombstones[topic] = PrunedEvent.objects.filter(topic=topic, timestamp__lt=cutoff).count()
    return report


def _due_events(topic: str, cutoff: datetime):
    return Event.objects.filter(topic=topic, timestamp__lt=cutoff)


def _topics() -> list[str]:
    # From the counters: one row per topic and shard, never a scan of the events.
    return sorted(set(Stats.objects.values_list("topic", flat=True)))


def _prune_chunk(topic: str, cutoff: datetime, limit: int) -> tuple[int, float]:
    """Delete the topic's oldest events before `cutoff`, up to `limit`, with their tombstones and count.

    Returns how many, and how long the write lock was held. The count is what
    this transaction deleted: a concurrent pruner's rows are its own to count.
    """
    events = connection.ops.quote_name(Event._meta.db_table)
    due = f"SELECT id FROM {events} WHERE topic = %s AND timestamp < %s ORDER BY timestamp LIMIT %s"
    params = [topic, connection.ops.adapt_datetimefield_value(cutoff), limit]
    with write_transaction(), connection.cursor() as cursor:
        locked_at = time.monotonic()
        if connection.vendor == "postgresql":
            # One statement, one round trip. Pruners in several processes skip each other's rows.
            cursor.execute(
                f"WITH gone AS (DELETE FROM {events} WHERE id IN ({due} FOR UPDATE SKIP LOCKED)"
                " RETURNING topic, event_id, timestamp),"
                f" tombstoned AS ({tombstones.INSERT_FROM_GONE})"
                " SELECT COUNT(*) FROM gone",
                params,
            )
            (deleted,) = cursor.fetchone()
        else:
            use_consumer_cache()  # its deletes touch the same index pages all over the table as the inserts
            cursor.execute(f"DELETE FROM {events} WHERE id IN ({due}) RETURNING event_id, timestamp", params)
            gone = cursor.fetchall()
            tombstones.record(topic, gone)
            deleted = len(gone)
        if deleted:
            counters.add_pruned(topic, deleted)
    return deleted, time.monotonic() - locked_at


def _expire_chunk(topic: str, cutoff: datetime, limit: int) -> tuple[int, float]:
    with write_transaction():
        locked_at = time.monotonic()
        expired = tombstones.expire(topic, before=cutoff, limit=limit)
    return expired, time.monotonic() - locked_at
