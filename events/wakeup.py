"""There is new work: intake.enqueue announces every commit, idle consumers wake at once.

Two ways, both at commit (never for a rollback): this process's consumer is
woken by an in-process event (`new_work`), and on PostgreSQL the consumers of
other processes and hosts by a NOTIFY that PostgreSQL delivers at commit, when
the batch is already visible. Each consumer there keeps one extra connection
LISTENing (Listener).

A process that runs a consumer of its own (events.background: gunicorn's
default) notifies at most every NOTICE_INTERVAL: its own consumer takes its
publishes, and the others only need to hear now and then that there is work
to share. PostgreSQL holds one database-wide lock from a notifying
transaction's commit until its WAL flush ends, so a NOTIFY with every publish
made every web worker's commits, and the consumers', wait for each other
(README, "The intake NOTIFY"). The consumer's poll stays as the fallback: for
work queued by other processes on SQLite, and while the listening connection
is down.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

logger = logging.getLogger(__name__)

CHANNEL = "loggregator_intake"
# Seconds between the notifications of a process that runs a consumer of its own.
NOTICE_INTERVAL = 0.1
# How long one wait for notifications lasts: bounds how late the listener
# notices its stop event.
LISTEN_SLICE = 1.0
MAX_RECONNECT_BACKOFF = 30.0

# Set when this process commits new work; the in-process consumer waits on it.
new_work = threading.Event()
# Set while this process runs a consumer of its own (events.background).
local_consumer = threading.Event()
_last_notice = float("-inf")  # time.monotonic() of this process's last intake notification


def is_supported() -> bool:
    """Whether other processes can be notified (PostgreSQL's LISTEN/NOTIFY)."""
    return connection.vendor == "postgresql"


def notice_due() -> bool:
    """Whether the work this process is queueing should NOTIFY other processes' consumers; if so, counts it as sent.

    Always without a consumer of its own (nobody else would hear of it);
    otherwise at most every NOTICE_INTERVAL. A race between threads costs at
    most one notification more.
    """
    global _last_notice
    if not is_supported():
        return False
    now = time.monotonic()
    if local_consumer.is_set() and now - _last_notice < NOTICE_INTERVAL:
        return False
    _last_notice = now
    return True


def announce_at_commit(using: str = DEFAULT_DB_ALIAS) -> None:
    """Call inside the transaction that queues work (on database `using`): consumers hear of it once it commits."""
    if notice_due():
        notify_at_commit()  # PostgreSQL: one database, the queue's
    transaction.on_commit(new_work.set, using=using)


def announce_statement() -> str:
    """The SELECT that ends a statement queueing work (PostgreSQL): announce_at_commit()'s NOTIFY, if due."""
    return notify_statement() if notice_due() else "SELECT 1"


def notify_at_commit(channel: str = CHANNEL) -> None:
    """NOTIFY `channel` (on PostgreSQL) when the current transaction commits: its listeners wake then."""
    if is_supported():
        with connection.cursor() as cursor:
            cursor.execute(notify_statement(channel))


def notify_statement(channel: str = CHANNEL) -> str:
    """A SELECT that notifies `channel` when its transaction commits (PostgreSQL), for a larger statement."""
    return f"SELECT pg_notify('{channel}', '')"


class Listener(threading.Thread):
    """Sets `wakeup` on each notification until `stop` is set (then exits within LISTEN_SLICE)."""

    def __init__(self, wakeup: threading.Event, stop: threading.Event, channel: str = CHANNEL):
        super().__init__(name=f"loggregator-listener-{channel}", daemon=True)
        self.wakeup = wakeup
        self.stop = stop
        self.channel = channel
        # Set while LISTEN is in effect.
        self.listening = threading.Event()

    def run(self) -> None:
        backoff = 0.0
        while not self.stop.is_set():
            try:
                self._listen()
            except psycopg.Error:
                backoff = min(MAX_RECONNECT_BACKOFF, max(1.0, backoff * 2))
                logger.warning(
                    "Listening for new work failed; polling only, reconnecting in %.0f s", backoff, exc_info=True
                )
                self.stop.wait(backoff)
            else:
                backoff = 0.0

    def _listen(self) -> None:
        # Its own connection, outside Django's: it sits in LISTEN for the life
        # of the consumer and must never be shared, pooled or closed per round.
        params = connections["default"].get_connection_params()
        with psycopg.connect(**params, autocommit=True) as listening:
            listening.execute(f"LISTEN {self.channel}")
            self.listening.set()
            try:
                # Work queued while not listening sent no notification we saw.
                self.wakeup.set()
                while not self.stop.is_set():
                    for _notify in listening.notifies(timeout=LISTEN_SLICE):
                        self.wakeup.set()
            finally:
                self.listening.clear()
