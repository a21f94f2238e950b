"""The one write path for events: store a batch, drop duplicates, count both.

Nothing else writes Event rows. The UniqueConstraint on (topic, event_id)
decides what is a duplicate (INSERT ... ON CONFLICT DO NOTHING): the first copy
wins, later copies are the rows the database declined. That stays correct with
any number of consumers, in-batch duplicates included.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection

from events import counters, intake
from events.models import Event
from events.db import write_transaction


@dataclass(frozen=True)
class StoredBatch:
    intake_batches: int
    unique: int
    duplicates: int


def store_events(rows: list[intake.EventRow]) -> dict[str, tuple[int, int]]:
    """Insert the rows that are new and count (unique, duplicates) per topic.

    Must run inside the transaction that also takes the rows off the queue.
    """
    by_topic: dict[str, list[intake.EventRow]] = defaultdict(list)
    for row in rows:
        by_topic[row[0]].append(row)

    table = connection.ops.quote_name(Event._meta.db_table)
    payload = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    sql = (
        f"INSERT INTO {table} (topic, event_id, timestamp, source, payload)"
        f" VALUES (%s, %s, %s, %s, {payload})"
        " ON CONFLICT (topic, event_id) DO NOTHING"
    )
    processed = {}
    with connection.cursor() as cursor:
        # Per topic, so the driver's row count tells each topic's new rows.
        for topic in sorted(by_topic):
            topic_rows = by_topic[topic]
            cursor.executemany(sql, topic_rows)
            processed[topic] = (cursor.rowcount, len(topic_rows) - cursor.rowcount)
    counters.add_processed(processed)
    return processed


def process_next_batch(*, max_events: int) -> StoredBatch | None:
    """Take the oldest queued events and store them, in one transaction.

    A crash at any point rolls back the claim, the inserts and the counters
    together, so the work is redone once: never lost, never counted twice.
    Returns None when the queue is empty.
    """
    if not intake.has_pending():  # a cheap read before taking the write lock
        return None
    with write_transaction():
        claimed = intake.claim(max_events)
        if not claimed:
            return None
        rows = [row for batch in claimed for row in intake.decode(batch.body)]
        processed = store_events(rows)
        intake.delete([batch.id for batch in claimed])
    return StoredBatch(
        intake_batches=len(claimed),
        unique=sum(unique for unique, _ in processed.values()),
        duplicates=sum(duplicates for _, duplicates in processed.values()),
    )
