"""Exactly once across two SQLite files: the consumer's hand-off from the queue to the store.

With the intake queue in a file of its own (events.routers), no transaction
spans both. The store's transaction records the intake batches it stores
(StoredIntakeBatch) beside their events; the batches then leave the queue in
a transaction of the queue's own. A crash between the two commits leaves
batches on the queue that are recorded as stored: the next consumer only
takes them off (events.store).

A record is dropped once its batch is off the queue for good. Intake ids only
grow (AUTOINCREMENT) and consumers claim the oldest batches first, so no
batch older than the oldest one a consumer claims can ever be queued again.
"""

from __future__ import annotations

from django.db import connection

from events.models import StoredIntakeBatch


def already_stored(batch_ids: list[int]) -> list[int]:
    """Those of the batches that a store transaction has recorded."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {_table()} WHERE id IN ({', '.join(['%s'] * len(batch_ids))})", batch_ids)
        return [batch_id for (batch_id,) in cursor.fetchall()]


def record(batch_ids: list[int]) -> None:
    """Inside the transaction that stores the batches (the oldest queued batch first): record them."""
    table = _table()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id < %s", [min(batch_ids)])
        cursor.executemany(f"INSERT INTO {table} (id) VALUES (%s)", [(batch_id,) for batch_id in batch_ids])


def _table() -> str:
    return connection.ops.quote_name(StoredIntakeBatch._meta.db_table)
