"""The durable intake queue: accepted publish requests waiting for the consumer.

Publishing commits one IntakeBatch row (and the `received` counters) before
the 202 goes out, so an acknowledged event survives any crash. The rows hold
the validated events (timestamps in UTC), msgspec-encoded and zstd-compressed:
compressing takes a few milliseconds outside the transaction and cuts what the
database writes, under its write lock, by an order of magnitude. decode()
gives them back in the form events.store inserts.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from dataclasses import dataclass

import msgspec
import zstandard
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from events import backpressure, counters, wakeup
from events.db import write_transaction
from events.group_commit import AsyncGroupCommit, GroupCommit
from events.models import IntakeBatch
from events.routers import intake_alias
from events.validation import PublishedEvent

# Publishes written together become one intake row of at most this many
# events: a consumer transaction takes at least one row whole.
MAX_ROW_EVENTS = 1000

# (topic, event_id, timestamp, source, payload JSON text) in database form.
EventRow = tuple[str, str, str, str, str]


class _QueuedEvent(msgspec.Struct, gc=False):
    """A PublishedEvent as the queue holds it: validated, the timestamp naive UTC."""

    topic: str
    event_id: str  # 32 hex digits, or the canonical form for a database with a uuid type
    timestamp: str  # ISO 8601 with a "T"
    source: str
    payload: msgspec.Raw


# msgspec encodes the validated events in one call, in C: no per-event Python.
_encoders = {"hex": msgspec.json.Encoder(uuid_format="hex"), "canonical": msgspec.json.Encoder()}
_decoder = msgspec.json.Decoder(list[_QueuedEvent])
# Rows queued before the queue held objects: arrays already in database form.
_legacy_decoder = msgspec.json.Decoder(list[tuple[str, str, str, str, msgspec.Raw]])
# Level 1: most of the size saving for a fraction of the time of higher levels.
# (zstd contexts are not thread-safe: one per thread.)
_zstd = threading.local()


def encode(events: list[PublishedEvent]) -> bytes:
    """Encode validated events for the queue."""
    return _compressor().compress(_encoder(settings.DATABASES[DEFAULT_DB_ALIAS]["ENGINE"]).encode(events))


@functools.cache
def _encoder(engine: str) -> msgspec.json.Encoder:
    # Looked up once per database engine, not per call: on an event loop each
    # request is a task of its own, and Django gives each a new connection object.
    # Without a native uuid type Django keeps UUIDs as 32 hex digits.
    return _encoders["canonical" if connections[intake_alias()].features.has_native_uuid_field else "hex"]


def decode(body: bytes) -> list[EventRow]:
    """The queued events in database form."""
    data = _decompressor().decompress(body)
    if data.startswith(b"[["):
        return [row[:4] + (bytes(row[4]).decode(),) for row in _legacy_decoder.decode(data)]
    # Naive UTC in Django's own text form ("2026-11-26 12:00:00.000001"), so
    # SQLite orders and filters these exactly like values the ORM wrote.
    return [
        (event.topic, event.event_id, event.timestamp.replace("T", " ", 1), event.source, bytes(event.payload).decode())
        for event in _decoder.decode(data)
    ]


def _compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_zstd, "compressor"):
        _zstd.compressor = zstandard.ZstdCompressor(level=1)
    return _zstd.compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_zstd, "decompressor"):
        _zstd.decompressor = zstandard.ZstdDecompressor()
    return _zstd.decompressor


@dataclass(frozen=True)
class _Accepted:
    body: bytes
    event_count: int
    received_by_topic: Counter[str]

    @classmethod
    def of(cls, events: list[PublishedEvent]) -> _Accepted:
        return cls(encode(events), len(events), Counter(event.topic for event in events))


def enqueue(events: list[PublishedEvent]) -> None:
    """Commit the events to the queue and count them as received: all or nothing.

    Returns once committed; consumers are told (events.wakeup). Concurrent
    calls share transactions (group commit).
    """
    _group_commit.submit(_Accepted.of(events))
    backpressure.backlog.add(len(events))


async def enqueue_from_event_loop(events: list[PublishedEvent]) -> None:
    """enqueue() for a coroutine: a writer thread commits, the event loop stays free meanwhile.

    For small bodies (events.publish_fast_path): the writer queues the
    publishes it commits together as one intake row, so the consumer decodes
    and deletes one row where it would have handled one per request.
    """
    await _async_group_commit.submit(events)
    backpressure.backlog.add(len(events))


def _write_as_one_row(publishes: list[list[PublishedEvent]]) -> None:
    rows, row = [], []
    for events in publishes:
        if row and len(row) + len(events) > MAX_ROW_EVENTS:
            rows.append(row)
            row = []
        row.extend(events)
    _write_accepted([_Accepted.of(events) for events in [*rows, row]])


def _refresh_backlog_count() -> None:
    # The fast path may not query, so when the backlog's count expires its
    # publishes go to the view until one recounts; the writer thread may.
    if settings.LOGGREGATOR["MAX_QUEUED_EVENTS"]:
        backpressure.backlog.refresh_if_aging()


def _write_accepted(accepted: list[_Accepted]) -> None:
    connection = connections[intake_alias()]
    accepted_at = connection.ops.adapt_datetimefield_value(timezone.now())
    received_by_topic = sum((item.received_by_topic for item in accepted), Counter())
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        _write_in_one_statement(accepted_at, accepted, received_by_topic)
        return
    with write_transaction(connection.alias), connection.cursor() as cursor:
        # Plain SQL: building model instances costs more than the insert on
        # the single-event path.
        cursor.executemany(
            f"INSERT INTO {_table()} (accepted_at, event_count, body) VALUES (%s, %s, %s)",
            [(accepted_at, item.event_count, item.body) for item in accepted],
        )
        counters.add_received(received_by_topic, using=connection.alias)
        wakeup.announce_at_commit(using=connection.alias)


def _write_in_one_statement(accepted_at, accepted: list[_Accepted], received_by_topic: Counter[str]) -> None:
    """PostgreSQL: the queue rows, the counters and the notification (if due) in one statement, its own transaction.

    One round trip to the server instead of five (BEGIN, INSERT, counters,
    NOTIFY, COMMIT). Each is a wake-up of the server's backend and of this
    thread, ~1 ms apiece on a busy host, and every single-event publish of
    this process waits for the writer thread's transaction.
    """
    counted, counted_params = counters.received_statement(received_by_topic)
    with connections[intake_alias()].cursor() as cursor:
        cursor.execute(
            f"WITH queued AS (INSERT INTO {_table()} (accepted_at, event_count, body)"
            " SELECT %s::timestamptz, * FROM unnest(%s::integer[], %s::bytea[])),"
            f" counted AS ({counted}) {wakeup.announce_statement()}",
            [accepted_at, [item.event_count for item in accepted], [item.body for item in accepted], *counted_params],
        )
    wakeup.new_work.set()  # committed: this process's consumer wakes too


_group_commit = GroupCommit(_write_accepted)
_async_group_commit = AsyncGroupCommit(
    _write_as_one_row, name="loggregator-intake-writer", after_group=_refresh_backlog_count
)


@dataclass(frozen=True)
class ClaimedBatch:
    id: int
    body: bytes


# The consumer's queue statements are plain SQL: under a trickle of single
# events a transaction holds a few rows, and building ORM queries cost more
# than running them. They read the intake database unless told another
# (`using`: events.store drains batches that earlier versions queued in the
# store's database).


def _table() -> str:
    return connections[intake_alias()].ops.quote_name(IntakeBatch._meta.db_table)


def has_pending(using: str | None = None) -> bool:
    with connections[using or intake_alias()].cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {_table()} LIMIT 1")
        return cursor.fetchone() is not None


def claim(max_events: int, using: str | None = None) -> list[ClaimedBatch]:
    """The oldest queued batches, up to about `max_events` events (at least one batch).

    On PostgreSQL, call inside the transaction that stores and deletes them:
    they are locked, and batches another consumer holds are skipped, so
    consumers never wait on each other. SQLite has no row locks: its consumer
    reads them before taking the write lock (events.store).
    """
    connection = connections[using or intake_alias()]
    table = _table()
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    after = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                f"SELECT id, event_count FROM {table} WHERE id > %s ORDER BY id LIMIT %s", [after, max_events]
            )
            candidates = cursor.fetchall()
            if not candidates:
                return []
            chosen, total = [], 0
            for batch_id, event_count in candidates:
                if chosen and total + event_count > max_events:
                    break
                chosen.append(batch_id)
                total += event_count
            cursor.execute(
                f"SELECT id, body FROM {table} WHERE id IN ({', '.join(['%s'] * len(chosen))}) ORDER BY id{lock}",
                chosen,
            )
            claimed = [ClaimedBatch(batch_id, bytes(body)) for batch_id, body in cursor.fetchall()]
            if claimed:
                return claimed
            # Other consumers hold all of these; look past them. Each holds one
            # transaction's worth, so this ends after about as many rounds as
            # there are consumers, or at the end of the queue.
            after = chosen[-1]


def still_queued(batch_ids: list[int]) -> int:
    """How many of the batches are still on the queue."""
    with connections[intake_alias()].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {_table()} WHERE id IN ({', '.join(['%s'] * len(batch_ids))})", batch_ids)
        return cursor.fetchone()[0]


def delete(batch_ids: list[int], using: str | None = None) -> int:
    """Take the batches off the queue; returns how many of them were still there."""
    with connections[using or intake_alias()].cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table()} WHERE id IN ({', '.join(['%s'] * len(batch_ids))})", batch_ids)
        return cursor.rowcount
