"""The transactions of the two write paths: publishing and consuming."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from django.db import connection, transaction

# SQLite has one writer at a time. Its busy handler makes waiting writers
# sleep in growing steps (up to 100 ms) and retry, so a lock freed at once can
# still sit idle while they sleep. Within one process, writers queue on this
# lock instead and start the moment it is free; only writers of other
# processes ever reach the busy handler.
_sqlite_writer = threading.Lock()


@contextmanager
def write_transaction():
    """transaction.atomic() for a write path; queued within the process on SQLite."""
    if connection.vendor != "sqlite":
        with transaction.atomic():
            yield
        return
    with _sqlite_writer, transaction.atomic():
        yield
