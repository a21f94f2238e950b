"""Fill the event store directly, for measuring reads (the admin, the explorer) at a million events.

Rows go straight into the events table (COPY on PostgreSQL, executemany on
SQLite), with their counters, in chunks of one transaction each: no HTTP, no
queue, no duplicates. A million rows take a minute or two; publishing them
would take far longer and measure the write path, not the reads.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connection, transaction

from events import counters
from events.models import Event
from publisher.generator import LEVELS, SOURCES, make_topics

CHUNK_ROWS = 20_000
SQLITE_CACHE_KIB = 256 * 1024
WORDS = ("checkout", "refund", "timeout", "retry", "login", "cache", "invoice", "shipment", "quota", "webhook")
COLUMNS = ("topic", "event_id", "timestamp", "source", "payload")


def load_events(count: int, *, topics: int = 50, days: float = 30, seed: int = 0) -> None:
    """Store `count` new unique events over `topics` topics, timestamps spread over the last `days` days."""
    rng = random.Random(seed)
    topic_names = make_topics(topics, rng)
    if connection.vendor == "sqlite":
        # Random event ids land all over the unique index: with SQLite's default 2 MiB cache
        # most inserts wait on the disk.
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    end = datetime.now(UTC)
    for start in range(0, count, CHUNK_ROWS):
        rows = list(_rows(min(CHUNK_ROWS, count - start), rng, topic_names, end, timedelta(days=days)))
        with transaction.atomic():
            _insert(rows)
            stored = Counter(row[0] for row in rows)
            # Counted as received where these events are: in the store's database.
            counters.add_received(stored, using=DEFAULT_DB_ALIAS)
            counters.add_processed({topic: (n, 0) for topic, n in stored.items()})
    # Fresh planner statistics, as a store that grew slowly would have (autovacuum lags behind a bulk load).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _rows(count: int, rng: random.Random, topics: list[str], end: datetime, span: timedelta) -> Iterator[tuple]:
    for _ in range(count):
        payload = {
            "level": rng.choice(LEVELS),
            "status": rng.choice(("ok", "ok", "ok", "failed")),
            "order": rng.randrange(1_000_000),
            "message": f"{rng.choice(WORDS)} {rng.choice(WORDS)} #{rng.randrange(10_000)}",
        }
        timestamp = end - span * rng.random()
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        yield (rng.choice(topics), event_id, timestamp, rng.choice(SOURCES), payload)


def _insert(rows: list[tuple]) -> None:
    table = connection.ops.quote_name(Event._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for topic, event_id, timestamp, source, payload in rows:
                    copy.write_row((topic, event_id, timestamp, source, json.dumps(payload)))
        else:
            # As Django stores them on SQLite: UUIDs as 32 hex digits, naive UTC timestamps, JSON text.
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES (%s, %s, %s, %s, %s)",
                [
                    (topic, event_id.hex, _sqlite_timestamp(timestamp), source, json.dumps(payload))
                    for topic, event_id, timestamp, source, payload in rows
                ],
            )


def _sqlite_timestamp(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(sep=" ")
