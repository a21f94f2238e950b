"""The Stats counters: written inside the transactions that change what they count.

`received` grows in the publish transaction, `unique_processed` and
`duplicate_dropped` in the consumer's. Because each total changes atomically
with the queue, `received == unique_processed + duplicate_dropped + queued`,
and `queued` needs no table of its own.

Publishes count in the intake database, consumers in the store's: on a SQLite
file they are two files (events.routers). Readers then read the store's
counts first and the intake's after: an event is received before it is
processed, so the later read holds every event the earlier one counted as
processed, and `queued` never goes below zero. The store's rows keep what was
received before the queue had a file of its own, so `received` sums both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

from events.models import Stats
from events.routers import intake_alias, intake_has_own_database


@dataclass(frozen=True)
class Totals:
    received: int
    unique_processed: int
    duplicate_dropped: int
    pruned: int
    topics: list[str]

    @property
    def queued(self) -> int:
        return self.received - self.unique_processed - self.duplicate_dropped

    @property
    def stored(self) -> int:
        return self.unique_processed - self.pruned


def add_received(received_by_topic: Mapping[str, int], *, using: str) -> None:
    """Add to `received`, in the transaction on the intake database (`using`) that queues the events."""
    _add({topic: (count, 0, 0) for topic, count in received_by_topic.items()}, _publisher_shard(), using)


def add_processed(processed_by_topic: Mapping[str, tuple[int, int]]) -> None:
    """Add (unique, duplicates) per topic."""
    processed = {topic: (0, unique, duplicates) for topic, (unique, duplicates) in processed_by_topic.items()}
    _add(processed, _processor_shard(), DEFAULT_DB_ALIAS)


def _add(deltas: Mapping[str, tuple[int, int, int]], shard: int, using: str) -> None:
    rows = [(topic, shard, *deltas[topic]) for topic in sorted(deltas)]
    with connections[using].cursor() as cursor:
        cursor.executemany(_add_statement("VALUES (%s, %s, %s, %s, %s)"), rows)


def received_statement(received_by_topic: Mapping[str, int]) -> tuple[str, list]:
    """An INSERT that adds to `received` as add_received() does, and its parameters (PostgreSQL).

    For a caller that runs it in a data-modifying WITH of its own statement
    (events.intake): arrays keep the parameters two however many topics.
    """
    topics = sorted(received_by_topic)
    statement = _add_statement(
        "SELECT topic, %s, received, 0, 0 FROM unnest(%s::varchar[], %s::bigint[]) AS added (topic, received)"
    )
    return statement, [_publisher_shard(), topics, [received_by_topic[topic] for topic in topics]]


def _add_statement(rows: str) -> str:
    """An INSERT of (topic, shard, received, unique_processed, duplicate_dropped) `rows` that adds to existing counts.

    Callers give the topics in sorted order, so that concurrent writers lock
    rows in the same order and cannot deadlock.
    """
    table = _table()
    return (
        f"INSERT INTO {table} (topic, shard, received, unique_processed, duplicate_dropped) {rows}"
        " ON CONFLICT (topic, shard) DO UPDATE SET"
        f" received = {table}.received + excluded.received,"
        f" unique_processed = {table}.unique_processed + excluded.unique_processed,"
        f" duplicate_dropped = {table}.duplicate_dropped + excluded.duplicate_dropped"
    )


# A shard per transaction, at random: concurrent writers rarely pick the same
# rows. Publishes and the transactions that process events (consumers, the
# pruner) write rows of their own, shards [0, N) and [N, 2N): a consumer
# transaction holds its rows until it commits, and a publish that wanted one
# of them would wait for it (on PostgreSQL; SQLite has one writer anyway).
def _publisher_shard() -> int:
    return random.randrange(settings.LOGGREGATOR["COUNTER_SHARDS"])


def _processor_shard() -> int:
    shards = settings.LOGGREGATOR["COUNTER_SHARDS"]
    return shards + random.randrange(shards)


def _table() -> str:
    return connection.ops.quote_name(Stats._meta.db_table)


def add_pruned(topic: str, count: int) -> None:
    """Count events of `topic` deleted by retention, in the transaction that deletes them."""
    table = _table()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (topic, shard, received, unique_processed, duplicate_dropped, pruned)"
            " VALUES (%s, %s, 0, 0, 0, %s)"
            f" ON CONFLICT (topic, shard) DO UPDATE SET pruned = {table}.pruned + excluded.pruned",
            [topic, _processor_shard(), count],
        )


def queued_total() -> int:
    """Events accepted and not yet processed: one small aggregate over each database's counter rows."""
    queued = 0
    for using in _databases():
        with connections[using].cursor() as cursor:
            cursor.execute(f"SELECT SUM(received - unique_processed - duplicate_dropped) FROM {_table()}")
            queued += int(cursor.fetchone()[0] or 0)  # PostgreSQL sums bigints as numeric (Decimal)
    return queued


def read_totals() -> Totals:
    """All counters, each database's from one consistent snapshot."""
    sums = _sums()
    return Totals(
        received=sum(counts.received for counts in sums.values()),
        unique_processed=sum(counts.unique_processed for counts in sums.values()),
        duplicate_dropped=sum(counts.duplicate_dropped for counts in sums.values()),
        pruned=sum(counts.pruned for counts in sums.values()),
        topics=[topic for topic, counts in sums.items() if counts.unique_processed > counts.pruned],
    )


@dataclass(frozen=True)
class TopicCounts:
    received: int
    unique_processed: int
    duplicate_dropped: int


def per_topic() -> dict[str, TopicCounts]:
    """Every topic the counters know (received at least once), sorted, with its totals."""
    return {topic: TopicCounts(*counts[:3]) for topic, counts in _sums().items()}


class _Sums(NamedTuple):
    received: int
    unique_processed: int
    duplicate_dropped: int
    pruned: int


def _sums() -> dict[str, _Sums]:
    """Each topic's counts summed over its shards, sorted by topic: the store's database first, then the intake's."""
    table = _table()
    sums: dict[str, list[int]] = {}
    statement = (
        "SELECT topic, SUM(received), SUM(unique_processed), SUM(duplicate_dropped), SUM(pruned)"
        f" FROM {table} GROUP BY topic"
    )
    for using in _databases():
        with connections[using].cursor() as cursor:
            cursor.execute(statement)
            for topic, *counts in cursor.fetchall():
                # PostgreSQL sums bigints as numeric (Decimal): back to int for the API.
                totals = sums.setdefault(topic, [0, 0, 0, 0])
                for index, count in enumerate(counts):
                    totals[index] += int(count)
    return {topic: _Sums(*sums[topic]) for topic in sorted(sums)}


def _databases() -> list[str]:
    """Where the counter rows are, in the order readers read them: the store's database, then the intake's."""
    return [DEFAULT_DB_ALIAS, intake_alias()] if intake_has_own_database() else [DEFAULT_DB_ALIAS]


def events_per_topic() -> dict[str, int]:
    """Stored events per known topic: a few counter rows per topic, never a scan of the events."""
    return {topic: counts.unique_processed for topic, counts in per_topic().items()}
