"""The log of store transactions that the live tail reads (StoreCommit).

The write path (events.store) draws a commit id before it inserts, writes it
into every new event, and as its last step records the commit with its
position: the count of all events stored up to and including it. On
PostgreSQL consumers store concurrently and ids follow no commit order, so
the position is assigned under a transaction-scoped advisory lock that is held
until COMMIT: the next transaction can only take a position after this one is
visible. On SQLite one transaction writes at a time, which already orders
them. Either way a reader that sees position P knows every position below P is
committed, so "everything after P" is exact, across processes and restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from events import wakeup
from events.models import StoreCommit

# Wakes every live-tail watcher when a store transaction commits (PostgreSQL).
STORED_CHANNEL = "loggregator_stored"
# pg_advisory_xact_lock key that orders positions ("lgr-tail" in ASCII).
_POSITION_LOCK = 0x6C67722D7461696C


@dataclass(frozen=True)
class Commit:
    id: int
    position: int
    event_count: int
    topics: tuple[str, ...]

    @property
    def start(self) -> int:
        """The position just before this commit's events."""
        return self.position - self.event_count


def new_commit_id() -> int:
    """An id for the transaction about to store events; call inside it."""
    table = connection.ops.quote_name(StoreCommit._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")
        else:
            # One writer at a time (events.db.write_transaction).
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
        (commit_id,) = cursor.fetchone()
    return commit_id


def record(commit_id: int, stored_by_topic: Mapping[str, int]) -> None:
    """Record the commit as the transaction's last step (nothing when it stored no event)."""
    stored = {topic: count for topic, count in stored_by_topic.items() if count}
    if not stored:
        return
    table = connection.ops.quote_name(StoreCommit._meta.db_table)
    count = sum(stored.values())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POSITION_LOCK])
        cursor.execute(
            f"INSERT INTO {table} (id, position, event_count, topics, stored_at)"
            f" SELECT %s, COALESCE(MAX(position), 0) + %s, %s, %s, %s FROM {table}",
            [
                commit_id,
                count,
                count,
                " ".join(sorted(stored)),
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
    wakeup.notify_at_commit(STORED_CHANNEL)


# --- reading ------------------------------------------------------------------


def head() -> int:
    """The position of the last committed store transaction (0 before the first)."""
    return StoreCommit.objects.aggregate(head=Max("position"))["head"] or 0


def commits_after(position: int, *, max_events: int, max_commits: int = 1000) -> list[Commit]:
    """The commits after `position` in commit order, about `max_events` events' worth (at least one commit)."""
    rows = StoreCommit.objects.filter(position__gt=position).order_by("position")
    commits, events = [], 0
    for commit_id, commit_position, event_count, topics in rows.values_list("id", "position", "event_count", "topics")[
        :max_commits
    ]:
        if commits and events + event_count > max_events:
            break
        commits.append(Commit(commit_id, commit_position, event_count, tuple(topics.split())))
        events += event_count
    return commits


def position_before(instant: datetime) -> int:
    """Where a stream that starts at `instant` begins: before the first commit stored then or later."""
    first = StoreCommit.objects.filter(stored_at__gte=instant).order_by("stored_at", "position").first()
    return first.position - first.event_count if first else head()
