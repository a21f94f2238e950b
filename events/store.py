"""The one write path for events: store a batch, drop duplicates, count both.

Nothing else writes Event rows. The UniqueConstraint on (topic, event_id)
decides what is a duplicate (INSERT ... ON CONFLICT DO NOTHING): the first copy
wins, later copies are the rows the database declined. That stays correct with
any number of consumers, in-batch duplicates included.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import psycopg
from django.db import connection

from events import commit_log, counters, intake
from events.db import use_consumer_cache, write_transaction
from events.models import Event


@dataclass(frozen=True)
class StoredBatch:
    intake_batches: int
    unique: int
    duplicates: int


def store_events(rows: list[intake.EventRow]) -> dict[str, tuple[int, int]]:
    """Insert the rows that are new and count (unique, duplicates) per topic.

    Must run inside the transaction that also takes the rows off the queue.
    """
    offered = Counter(row[0] for row in rows)
    commit_id = commit_log.new_commit_id()
    if connection.vendor == "postgresql":
        inserted = _insert_postgresql(rows, commit_id)
    else:
        inserted = _insert_sqlite(rows, commit_id)
    processed = {topic: (inserted[topic], count - inserted[topic]) for topic, count in offered.items()}
    counters.add_processed(processed)
    commit_log.record(commit_id, inserted)  # last: it holds the position lock until COMMIT
    return processed


def _insert_sqlite(rows: list[intake.EventRow], commit_id: int) -> Counter[str]:
    # One writer at a time (the IMMEDIATE transaction): rows go in arrival order.
    table = connection.ops.quote_name(Event._meta.db_table)
    sql = (
        f"INSERT INTO {table} (topic, event_id, timestamp, source, payload, store_commit_id)"
        f" VALUES (%s, %s, %s, %s, %s, {int(commit_id)})"
        " ON CONFLICT (topic, event_id) DO NOTHING"
    )
    by_topic: dict[str, list[intake.EventRow]] = defaultdict(list)
    for row in rows:
        by_topic[row[0]].append(row)
    inserted = Counter()
    with connection.cursor() as cursor:
        # Per topic, so the driver's row count tells each topic's new rows.
        for topic, topic_rows in by_topic.items():
            cursor.executemany(sql, topic_rows)
            inserted[topic] = cursor.rowcount
    return inserted


def _insert_postgresql(rows: list[intake.EventRow], commit_id: int) -> Counter[str]:
    table = connection.ops.quote_name(Event._meta.db_table)
    # One statement for the whole batch (arrays, unnested in order) instead
    # of a statement per row; RETURNING tells which rows were new.
    #
    # Many consumers insert at once here. An insert waits for a concurrent
    # transaction that inserted the same key, so every consumer inserts its
    # keys in one order: then those waits can never form a cycle (a
    # deadlock). The ids are drawn first, in the order the events arrived
    # (`n`), so ties in timestamp still list in that order, as on SQLite;
    # the first copy of a key goes first.
    #
    # The arrays go as binary parameters (%b) on a plain psycopg cursor:
    # Django's cursors quote them into the SQL text, which PostgreSQL then
    # parses five times slower than the insert itself.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"WITH arrived AS ("
            f" SELECT t, e::uuid AS e, ts::timestamptz AS ts, s, p::jsonb AS p, n,"
            f" nextval(pg_get_serial_sequence('{table}', 'id')) AS id"
            " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
            " WITH ORDINALITY AS x(t, e, ts, s, p, n) ORDER BY n)"
            f" INSERT INTO {table} (topic, event_id, timestamp, source, payload, id, store_commit_id)"
            f" SELECT t, e, ts, s, p, id, {int(commit_id)} FROM arrived ORDER BY t, e, n"
            " ON CONFLICT (topic, event_id) DO NOTHING"
            " RETURNING topic",
            [list(column) for column in zip(*rows)],
        )
        return Counter(topic for (topic,) in cursor.fetchall())


def process_next_batch(*, max_events: int) -> StoredBatch | None:
    """Take the oldest queued events and store them, in one transaction.

    A crash at any point rolls back the claim, the inserts and the counters
    together, so the work is redone once: never lost, never counted twice.
    Returns None when the queue is empty.
    """
    if not intake.has_pending():  # a cheap read before taking the write lock
        return None
    with write_transaction():
        use_consumer_cache()  # per batch: the connection may have been replaced since the last
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
