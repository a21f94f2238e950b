"""The consumer loop: drain the intake queue through events.store.

The same class runs as a thread inside each web process (events.background)
and alone as `manage.py run_consumer`, both built by Consumer.from_settings().
It knows nothing about signals: it runs until stop() (or its stop event), and
always finishes the batch it is storing. While idle it waits on its wake-up
event: set when this process commits new work, by a PostgreSQL notification
(events.wakeup), or by stop().
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from events import db, metrics, wakeup
from events.checkpointer import Checkpointer
from events.store import process_next_batch

logger = logging.getLogger(__name__)

MAX_ERROR_BACKOFF = 30.0


class Consumer:
    def __init__(
        self,
        *,
        batch_events: int,
        poll_interval: float,
        linger: float = 0.0,
        wakeup: threading.Event | None = None,
    ):
        self.batch_events = batch_events
        self.poll_interval = poll_interval
        # After a batch that emptied the queue, let more arrive before the next
        # transaction: under a stream of single events, one transaction then
        # stores many of them instead of one each.
        self.linger = linger
        # Set when there may be new work (or to cut a wait short), so it
        # starts at once instead of at the next poll.
        self.wakeup = wakeup or threading.Event()
        # Set by stop(), or the event given to run().
        self.stop_requested = threading.Event()
        self.unique = 0
        self.duplicates = 0
        self._checkpointer = Checkpointer()

    @classmethod
    def from_settings(cls, **overrides) -> Consumer:
        """A consumer as settings.LOGGREGATOR configures it, woken by this process's new work."""
        config = settings.LOGGREGATOR
        options = {
            "batch_events": config["CONSUMER_BATCH_EVENTS"],
            "poll_interval": config["CONSUMER_POLL_INTERVAL"],
            "linger": config["CONSUMER_LINGER"],
            "wakeup": wakeup.new_work,
        }
        return cls(**{**options, **overrides})

    def stop(self) -> None:
        """Ask the loop to end after the batch in hand; an idle consumer ends at once."""
        self.stop_requested.set()
        self.wakeup.set()

    def run(self, stop: threading.Event | None = None, *, until_drained: bool = False) -> None:
        """Store queued events until stop() (or `stop` is set; or, with until_drained, the queue is empty).

        A running consumer outlives database errors, retrying with a back-off;
        a drain raises them.
        """
        if stop is not None:
            self.stop_requested = stop
        stop = self.stop_requested
        listener = None
        if not until_drained and wakeup.is_supported():
            listener = wakeup.Listener(self.wakeup, threading.Event())
            listener.start()
        try:
            self._loop(stop, until_drained=until_drained)
        finally:
            if listener is not None:
                listener.stop.set()
                listener.join(wakeup.LISTEN_SLICE * 2)
            self._checkpointer.stop()
            close_old_connections()

    def _loop(self, stop: threading.Event, *, until_drained: bool) -> None:
        backoff = 0.0
        while not stop.is_set():
            close_old_connections()
            # Cleared before looking, so a wake-up that arrives while we look
            # is kept for the wait below instead of being lost.
            self.wakeup.clear()
            try:
                started = time.perf_counter()
                stored = process_next_batch(max_events=self.batch_events)
            except DatabaseError:
                if until_drained:
                    raise  # a one-off drain (run_consumer --once, tests) fails loudly
                # The transaction rolled back: the batch stays queued for the
                # next attempt. Back off so a broken database is not hammered.
                backoff = min(MAX_ERROR_BACKOFF, max(1.0, backoff * 2))
                logger.exception("Storing a batch failed; retrying in %.0f s", backoff)
                stop.wait(backoff)
                continue
            backoff = 0.0
            if stored is not None:
                metrics.observe_batch(time.perf_counter() - started, stored.unique + stored.duplicates)
                self.unique += stored.unique
                self.duplicates += stored.duplicates
                logger.debug("Stored %d unique events, dropped %d duplicates", stored.unique, stored.duplicates)
                if db.has_write_ahead_log():
                    self._checkpointer.stored(stored.unique + stored.duplicates)
                if self.linger and not until_drained and stored.unique + stored.duplicates < self.batch_events:
                    stop.wait(self.linger)
                continue
            if until_drained or stop.is_set():
                break
            self.wakeup.wait(self.poll_interval)
