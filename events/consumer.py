"""The consumer loop: drain the intake queue through events.store.

The same class runs as a thread inside each web process (events.background)
and alone as `manage.py run_consumer`. It knows nothing about signals: it runs
until its stop event is set, and always finishes the batch it is storing.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, close_old_connections

from events.store import process_next_batch

logger = logging.getLogger(__name__)

MAX_ERROR_BACKOFF = 30.0


class Consumer:
    def __init__(self, *, batch_events: int, poll_interval: float, wakeup: threading.Event | None = None):
        self.batch_events = batch_events
        self.poll_interval = poll_interval
        # Set by publishers in the same process, so new work starts at once
        # instead of at the next poll.
        self.wakeup = wakeup or threading.Event()
        self.unique = 0
        self.duplicates = 0

    def run(self, stop: threading.Event, *, until_drained: bool = False) -> None:
        """Store queued events until `stop` is set (or, with until_drained, the queue is empty)."""
        backoff = 0.0
        while not stop.is_set():
            close_old_connections()
            try:
                stored = process_next_batch(max_events=self.batch_events)
            except DatabaseError:
                # The transaction rolled back: the batch stays queued for the
                # next attempt. Back off so a broken database is not hammered.
                backoff = min(MAX_ERROR_BACKOFF, max(1.0, backoff * 2))
                logger.exception("Storing a batch failed; retrying in %.0f s", backoff)
                stop.wait(backoff)
                continue
            backoff = 0.0
            if stored is not None:
                self.unique += stored.unique
                self.duplicates += stored.duplicates
                logger.debug("Stored %d unique events, dropped %d duplicates", stored.unique, stored.duplicates)
                continue
            if until_drained:
                break
            self.wakeup.wait(self.poll_interval)
            self.wakeup.clear()
        close_old_connections()
