"""The dedup horizon: keys of pruned events, so that their late copies stay duplicates.

Retention deletes an event and writes its tombstone (events.models.PrunedEvent)
in one transaction. The write path (events.store) inserts a batch as usual,
then deletes whatever it inserted that has a tombstone: such a row can only be
a copy of a pruned event. Checking after the insert rather than before is what
keeps it exact on PostgreSQL: a prune that commits while the batch is being
inserted makes the insert wait on the deleted row, and the check, a later
statement, then sees the tombstone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

import msgspec
import psycopg
from django.db import connection

from events.models import Event, PrunedEvent


def delete_copies_of_pruned(event_ids: Iterable[str]) -> Counter[str]:
    """Delete the stored events among `event_ids` that have a tombstone; count them per topic.

    Call in the write path's transaction, after its insert. Without tombstones
    (no retention) it costs one lookup per batch, and `event_ids` is not even
    read; with them, one index lookup per id in the tombstone table.
    """
    if not PrunedEvent.objects.exists():
        return Counter()
    event_ids = list(event_ids)
    events = connection.ops.quote_name(Event._meta.db_table)
    tombstones = connection.ops.quote_name(PrunedEvent._meta.db_table)
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # Binary array parameter, like the insert (events.store): no quoting of thousands of ids.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f"DELETE FROM {events} e USING {tombstones} p"
                " WHERE p.event_id = ANY(%b::text[]::uuid[]) AND e.topic = p.topic AND e.event_id = p.event_id"
                " RETURNING e.topic",
                [event_ids],
            )
            return Counter(topic for (topic,) in cursor.fetchall())
    with connection.cursor() as cursor:
        # One JSON parameter instead of one per id (SQLite caps the number of parameters), joined
        # rather than in `IN (SELECT value FROM json_each(...))`, which SQLite runs a hundred times slower.
        cursor.execute(
            f"DELETE FROM {events} WHERE id IN ("
            f" SELECT e.id FROM json_each(%s) AS batch CROSS JOIN {tombstones} p ON p.event_id = batch.value"
            f" JOIN {events} e ON e.topic = p.topic AND e.event_id = p.event_id)"
            " RETURNING topic",
            [msgspec.json.encode(event_ids).decode()],
        )
        return Counter(topic for (topic,) in cursor.fetchall())


# PostgreSQL: tombstones for the rows of a data-modifying CTE `gone` (topic, event_id, timestamp).
INSERT_FROM_GONE = (
    f"INSERT INTO {PrunedEvent._meta.db_table} (topic, event_id, timestamp)"
    " SELECT topic, event_id, timestamp FROM gone ON CONFLICT (event_id, topic) DO NOTHING"
)


def record(topic: str, pruned: Iterable[tuple[object, datetime | str]]) -> None:
    """Write tombstones for (event_id, timestamp) pairs of `topic` that were just deleted."""
    table = connection.ops.quote_name(PrunedEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (topic, event_id, timestamp) VALUES (%s, %s, %s)"
            " ON CONFLICT (event_id, topic) DO NOTHING",
            [(topic, event_id, timestamp) for event_id, timestamp in pruned],
        )


def expire(topic: str, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` of the topic's tombstones of events older than `before`; how many went."""
    table = connection.ops.quote_name(PrunedEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN ("
            f" SELECT id FROM {table} WHERE topic = %s AND timestamp < %s ORDER BY timestamp LIMIT %s)",
            [topic, connection.ops.adapt_datetimefield_value(before), limit],
        )
        return cursor.rowcount
