"""The one write path for events: store a batch, drop duplicates, count both.

Nothing else writes Event rows. The UniqueConstraint on (topic, event_id)
decides what is a duplicate (INSERT ... ON CONFLICT): later copies are the rows
the database did not insert (on SQLite, later copies within a batch are not
even offered). That stays correct with any number of consumers.

The first copy accepted is the one stored. On SQLite one consumer stores the
queue in order, so the first copy to arrive is the first accepted. On
PostgreSQL consumers take intake batches side by side, and a later batch may
commit first; its copy is then replaced by the earlier batch's (see
_insert_postgresql), still counted as a duplicate there.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection

from events import commit_log, counters, handoff, intake, tombstones
from events.db import use_consumer_cache, write_transaction
from events.models import Event
from events.routers import intake_alias, intake_has_own_database

# An intake.EventRow and the id of the intake batch it was accepted in.
StoredRow = tuple[str, str, str, str, str, int]

# Rows per INSERT on SQLite (6 parameters each, and the commit id once; see insert_sizes).
ROWS_PER_INSERT = 1024


@dataclass(frozen=True)
class StoredBatch:
    intake_batches: int
    unique: int
    duplicates: int


def claimed_rows(claimed: list[intake.ClaimedBatch]) -> list[StoredRow]:
    """The events of the claimed batches, in order of acceptance."""
    return [(*row, batch.id) for batch in claimed for row in intake.decode(batch.body)]


def store_events(rows: list[StoredRow]) -> dict[str, tuple[int, int]]:
    """Insert the rows that are new and count (unique, duplicates) per topic.

    Must run inside the transaction that also takes the rows off the queue.
    """
    offered = Counter(map(itemgetter(0), rows))
    commit_id = commit_log.new_commit_id()
    if connection.vendor == "postgresql":
        inserted = _insert_postgresql(rows, commit_id)
    else:
        inserted = _insert_sqlite(rows, commit_id)
    # A copy of an event that retention deleted is a duplicate too (within the dedup horizon).
    inserted -= tombstones.delete_copies_of_pruned(map(itemgetter(1), rows))
    processed = {topic: (inserted[topic], count - inserted[topic]) for topic, count in offered.items()}
    counters.add_processed(processed)
    commit_log.record(commit_id, inserted)  # last: it holds the position lock until COMMIT
    return processed


def _insert_sqlite(rows: list[StoredRow], commit_id: int) -> Counter[str]:
    # One writer at a time (the IMMEDIATE transaction) takes the queue in
    # order, and only the first copy of an event in the batch is offered: the
    # first copy is always the one stored.
    first_copies: dict[str, dict[str, StoredRow]] = defaultdict(dict)
    for row in rows:
        first_copies[row[0]].setdefault(row[1], row)
    inserted = Counter()
    # sqlite3 itself, not Django's cursor: Django rewrites the placeholders of
    # every statement it is given, ~0.25 µs per row at this size.
    sqlite = connection.connection
    # Per topic, so the row count tells each topic's new rows.
    for topic, by_event_id in first_copies.items():
        topic_rows = list(by_event_id.values())
        start = 0
        for size in insert_sizes(len(topic_rows)):
            values = (commit_id, *chain.from_iterable(topic_rows[start : start + size]))
            inserted[topic] += sqlite.execute(_insert_statement(size), values).rowcount
            start += size
    return inserted


def insert_sizes(rows: int) -> list[int]:
    """How many rows each INSERT of `rows` rows carries: ROWS_PER_INSERT, then the powers of two of the rest.

    Many rows per statement rather than executemany's one: sqlite3 lets go of
    the GIL while SQLite runs a statement, and taking it back waits for any
    busy thread of the process to yield it (up to sys.getswitchinterval(), 5
    ms). With publishes or live streams busy beside it, a consumer inserting
    row by row waited after every row: in a scratch test with one busy thread,
    6,000 rows took 25 s instead of 0.14 s; 0.44 s this way. Powers of two keep
    the statements few in kind, so each is prepared once per connection.
    """
    sizes = [ROWS_PER_INSERT] * (rows // ROWS_PER_INSERT)
    rest = rows % ROWS_PER_INSERT
    return sizes + [1 << bit for bit in reversed(range(rest.bit_length())) if rest & (1 << bit)]


@functools.cache
def _insert_statement(rows: int) -> str:
    table = connection.ops.quote_name(Event._meta.db_table)
    # The commit id is the first parameter, named in every row (`?1`); the
    # numbering of the plain `?` that follow starts after it.
    values = ", ".join(["(?1, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO {table} (store_commit_id, topic, event_id, timestamp, source, payload, intake_batch)"
        f" VALUES {values} ON CONFLICT (topic, event_id) DO NOTHING"
    )


def _insert_postgresql(rows: list[StoredRow], commit_id: int) -> Counter[str]:
    table = connection.ops.quote_name(Event._meta.db_table)
    # One statement for the whole batch (arrays, unnested in order) instead
    # of a statement per row; RETURNING tells which rows were new.
    #
    # Many consumers insert at once here. An insert waits for a concurrent
    # transaction that inserted (or updated) the same key, so every consumer
    # writes its keys in one order: then those waits can never form a cycle
    # (a deadlock). The ids are drawn first, in the order the events arrived
    # (`n`), so ties in timestamp still list in that order, as on SQLite.
    # Only the first copy of a key in the batch is offered (DISTINCT ON):
    # one statement may not update a row twice.
    #
    # First copy wins across consumers: a stored copy that came in a later
    # intake batch than ours was stored out of order, so ours replaces it,
    # keeping its id (and so its place among equal timestamps) and its store
    # commit (a live tail delivered it then, and does not deliver it twice).
    # The row counted as unique when it was first stored, so here it is a
    # duplicate: new rows are the ones that got an id drawn here.
    #
    # The arrays go as binary parameters (%b) on a plain psycopg cursor:
    # Django's cursors quote them into the SQL text, which PostgreSQL then
    # parses five times slower than the insert itself.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"WITH arrived AS ("
            f" SELECT t, e::uuid AS e, ts::timestamptz AS ts, s, p::jsonb AS p, b, n,"
            f" nextval(pg_get_serial_sequence('{table}', 'id')) AS id"
            " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::int8[])"
            " WITH ORDINALITY AS x(t, e, ts, s, p, b, n) ORDER BY n),"
            " first_copies AS (SELECT DISTINCT ON (t, e) * FROM arrived ORDER BY t, e, n),"
            f" written AS (INSERT INTO {table} AS stored"
            " (topic, event_id, timestamp, source, payload, intake_batch, id, store_commit_id)"
            f" SELECT t, e, ts, s, p, b, id, {int(commit_id)} FROM first_copies ORDER BY t, e"
            " ON CONFLICT (topic, event_id) DO UPDATE SET timestamp = excluded.timestamp,"
            " source = excluded.source, payload = excluded.payload, intake_batch = excluded.intake_batch"
            " WHERE stored.intake_batch > excluded.intake_batch"
            " RETURNING topic, id)"
            " SELECT written.topic FROM written JOIN first_copies USING (id)",
            [list(column) for column in zip(*rows)],
        )
        return Counter(topic for (topic,) in cursor.fetchall())


class _TakenMeanwhile(Exception):
    """Another consumer stored some of the batches read before the transaction began."""


# Whether this process has looked for batches queued in the store's database
# before the queue had one of its own (events.routers).
_store_queue_drained = False


def process_next_batch(*, max_events: int) -> StoredBatch | None:
    """Take the oldest queued events and store them, in one transaction.

    A crash at any point rolls back the claim, the inserts and the counters
    together, so the work is redone once: never lost, never counted twice.
    (With the queue in a file of its own, events.handoff keeps that true.)
    Returns None when the queue is empty.
    """
    global _store_queue_drained
    if not _store_queue_drained:
        if intake_has_own_database() and intake.has_pending(using=DEFAULT_DB_ALIAS):
            return _process_from(DEFAULT_DB_ALIAS, max_events)
        _store_queue_drained = True
    return _process_from(intake_alias(), max_events)


def _process_from(queue: str, max_events: int) -> StoredBatch | None:
    while True:
        if not intake.has_pending(using=queue):  # a cheap read before taking the write lock
            return None
        try:
            if queue != DEFAULT_DB_ALIAS:
                return _store_then_dequeue(max_events)
            return _store_next_batch(max_events)
        except _TakenMeanwhile:
            continue  # rolled back; the next batch is someone else's progress


def _store_next_batch(max_events: int) -> StoredBatch | None:
    """The queue in the store's database: claim, store and dequeue in one transaction."""
    # Where consumers side by side lock the rows they take (PostgreSQL), the
    # claim is part of the transaction. Where all writers take turns on one
    # lock (SQLite), the batch is read and decoded before taking it, so the
    # lock is held for the writes alone.
    if connection.features.has_select_for_update_skip_locked:
        with write_transaction():
            claimed = intake.claim(max_events, using=DEFAULT_DB_ALIAS)
            return _store(claimed, claimed_rows(claimed))
    claimed = intake.claim(max_events, using=DEFAULT_DB_ALIAS)
    if not claimed:
        return None
    rows = claimed_rows(claimed)
    with write_transaction():
        use_consumer_cache()  # per batch: the connection may have been replaced since the last
        return _store(claimed, rows)


def _store(claimed: list[intake.ClaimedBatch], rows: list[StoredRow]) -> StoredBatch | None:
    """Take the claimed batches off the queue and store their rows; inside the write transaction."""
    if not claimed:
        return None
    # Deleting them confirms that no other consumer took them meanwhile (SQLite).
    if intake.delete([batch.id for batch in claimed], using=DEFAULT_DB_ALIAS) != len(claimed):
        raise _TakenMeanwhile
    return _stored(len(claimed), store_events(rows))


def _store_then_dequeue(max_events: int) -> StoredBatch | None:
    """The queue in a database of its own (SQLite): store in one transaction, dequeue in another (events.handoff)."""
    claimed = intake.claim(max_events)
    if not claimed:
        return None
    rows = claimed_rows(claimed)
    batch_ids = [batch.id for batch in claimed]
    with write_transaction():
        use_consumer_cache()  # per batch: the connection may have been replaced since the last
        # Under the store's write lock: no other consumer can store them now.
        if intake.still_queued(batch_ids) != len(batch_ids):
            raise _TakenMeanwhile  # another consumer stored and dequeued some of them
        stored_before = handoff.already_stored(batch_ids)
        if not stored_before:
            handoff.record(batch_ids)
            processed = store_events(rows)
    # Stored before: a consumer died between its two commits, or another one
    # is about to dequeue them. Dequeuing them twice is harmless.
    with write_transaction(intake_alias()):
        intake.delete(stored_before or batch_ids)
    if stored_before:
        raise _TakenMeanwhile
    return _stored(len(claimed), processed)


def _stored(intake_batches: int, processed: dict[str, tuple[int, int]]) -> StoredBatch:
    return StoredBatch(
        intake_batches=intake_batches,
        unique=sum(unique for unique, _ in processed.values()),
        duplicates=sum(duplicates for _, duplicates in processed.values()),
    )
