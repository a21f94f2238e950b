"""How the write paths use the database.

SQLite allows one writer at a time. Its busy handler makes a waiting writer
sleep in growing steps (up to 100 ms) and try again, so under load the lock
often sits free while every writer sleeps. Loggregator's writers queue
instead: on a thread lock within a process and on an flock() of a file beside
the database across processes, both of which wake the next writer the moment
the lock is free. Anything else that writes (a shell, a migration) still works:
it just waits through the busy timeout as usual.

SQLite also checkpoints its write-ahead log inside whichever COMMIT crosses
the size threshold, with an fsync, while holding the write lock. The
consumers checkpoint after their batches instead, outside the lock and on a
thread of their own (checkpoint(), events.checkpointer), so commits stay short.

Since only one transaction writes at a time, a second consumer on the same
SQLite file adds no speed, only contention: the in-process consumers of all
web processes take turns (sole_consumer()).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

# Per database: one lock for the threads of this process, one file for all processes.
_thread_locks = {alias: threading.Lock() for alias in settings.DATABASES}
_lock_files: dict[str, tuple[int, int]] = {}  # alias -> (pid, fd): a forked child opens its own


@contextmanager
def write_transaction(using: str = DEFAULT_DB_ALIAS):
    """transaction.atomic() for a write path; one writer at a time on SQLite."""
    database = connections[using]
    if database.vendor != "sqlite" or database.is_in_memory_db():
        with transaction.atomic(using=using):
            yield
        return
    with _thread_locks[using]:
        fd = _writer_lock_fd(using)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with transaction.atomic(using=using):
                yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _writer_lock_fd(using: str) -> int:
    lock_file = _lock_files.get(using)
    if lock_file is None or lock_file[0] != os.getpid():
        path = f"{connections[using].settings_dict['NAME']}.writer-lock"
        lock_file = _lock_files[using] = (os.getpid(), os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    return lock_file[1]


@contextmanager
def sole_consumer(stop: threading.Event, retry: float = 1.0):
    """Yield True while this is the only in-process consumer of the SQLite database.

    Elsewhere (PostgreSQL, in-memory SQLite) every consumer runs: True at once.
    """
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        yield True
        return
    with exclusive_turn(f"{connection.settings_dict['NAME']}.consumer-lock", stop, retry) as held:
        yield held


@contextmanager
def exclusive_turn(path: str, stop: threading.Event, retry: float):
    """Yield True once this holds an flock() on `path`, False if `stop` is set first.

    Waiters try again every `retry` seconds, so when the holder's process
    exits or is killed (the kernel drops the lock) one of them takes over.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop.wait(retry):
                    yield False
                    return
        yield True
    finally:
        os.close(fd)  # and with it the lock


def pass_turn(stop: threading.Event, longest: float) -> None:
    """Wait until another connection commits, or `longest` seconds if none does (SQLite).

    For a writer about to write again at once (the pruner's next chunk): flock()
    wakes its waiters without queueing them, so the writer that just let go
    would usually take the lock straight back. Waiting for someone else's
    commit hands every other turn to the others while they want the lock, and
    costs only the wait when nobody does. Returns early when `stop` is set.
    """
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        with connection.cursor() as cursor:
            wait_for_another_commit(cursor, stop, longest)


def wait_for_another_commit(cursor, stop: threading.Event, longest: float, poll: float = 0.002) -> bool:
    """True once another connection to the SQLite database has committed; False after `longest` or on `stop`."""

    def data_version() -> int:
        # Changes when another connection commits; this connection's own commits leave it alone.
        cursor.execute("PRAGMA data_version")
        return cursor.fetchone()[0]

    before, deadline = data_version(), time.monotonic() + longest
    while (left := deadline - time.monotonic()) > 0 and not stop.wait(min(poll, left)):
        if data_version() != before:
            return True
    return False


def use_consumer_cache() -> None:
    """Give this connection the consumers' page cache (SQLite; cheap to repeat)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = -{settings.LOGGREGATOR['CONSUMER_CACHE_MIB'] * 1024}")


def has_write_ahead_log() -> bool:
    """True on a SQLite database file (WAL mode); PostgreSQL checkpoints by itself."""
    return connection.vendor == "sqlite" and not connection.is_in_memory_db()


def checkpoint() -> tuple[int, int] | None:
    """Copy the write-ahead log into the database without blocking writers (SQLite).

    Returns the pages (frames) the log holds and how many of them are now
    copied; None without a log.
    """
    if not has_write_ahead_log():
        return None
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        _busy, frames, copied = cursor.fetchone()
    return frames, copied
