"""SQLite's WAL checkpoints on a thread of their own, beside the consumer.

A checkpoint copies what recent commits wrote to the write-ahead log into the
database file and syncs it. It needs no write lock (events.db.checkpoint), so
a thread of its own does it while the consumer goes on reading and storing the
next batch, instead of the consumer pausing for it. Requests that arrive while
one runs are folded into the next.

How often: a checkpoint writes each page the log holds once, however many
commits changed it, so fewer, larger checkpoints write less. But the log must
stay well under SQLite's own threshold (settings: wal_autocheckpoint), past
which a commit checkpoints inside itself, under the write lock. What a stored
event adds to the log depends on the store's size: ~0.14 pages in a fresh one,
where consecutive transactions change the same index pages again, ~0.9 past a
million events, where each event's random key lands on a page of its own. So
the consumer checkpoints when the log should hold about TARGET_FRAMES pages,
by what the last checkpoint found per event, and at least every second.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError

from events import db
from events.web_thread import WebThread

logger = logging.getLogger(__name__)

TARGET_FRAMES = 5_000  # pages; half of settings' wal_autocheckpoint
MAX_INTERVAL = 1.0  # seconds
# Never more often than every 5,000 events (a full consumer batch on SQLite before it grew to 20,000), never
# more than 50,000 apart, whatever the last checkpoint suggests.
MIN_EVENTS = 5_000
MAX_EVENTS = 50_000


class Checkpointer:
    def __init__(self, name: str = "loggregator-checkpointer"):
        self._due = threading.Event()
        # Stopping also sets _due, so an idle wait ends at once.
        self._thread = WebThread(name, on_stop=self._due.set)
        self.budget = MIN_EVENTS  # stored events between two checkpoints
        self._unrequested = 0  # events stored since the last request
        self._last_request = time.monotonic()
        self._lock = threading.Lock()
        self._requested = 0  # events the next checkpoint covers
        # The log's length after the last checkpoint, and whether it copied all of it.
        self._last_log: tuple[int, bool] | None = None

    def stored(self, events: int) -> None:
        """The consumer committed `events` more: checkpoint if the log has grown enough, or a second has passed."""
        self._unrequested += events
        # Now, if another commit like this one would take the log past its budget.
        due = self._unrequested >= MIN_EVENTS and self._unrequested + events > self.budget
        if due or time.monotonic() - self._last_request >= MAX_INTERVAL:
            with self._lock:
                self._requested += self._unrequested
            self._unrequested = 0
            self._last_request = time.monotonic()
            self.request()

    def request(self) -> None:
        """Checkpoint soon (at once if idle); the thread starts on the first request."""
        self._thread.start(self._run)
        self._due.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """End the thread after the checkpoint in hand, if any; False if it outlived `timeout`."""
        return self._thread.stop(timeout)

    def _run(self, stop: threading.Event) -> None:
        while True:
            self._due.wait()
            if stop.is_set():
                return
            self._due.clear()
            with self._lock:
                events, self._requested = self._requested, 0
            try:
                log = db.checkpoint()
            except DatabaseError:
                # The next commit past SQLite's own threshold checkpoints instead.
                logger.warning("WAL checkpoint failed", exc_info=True)
            else:
                if log is not None:
                    self._learn(events, *log)

    def _learn(self, events: int, frames: int, copied: int) -> None:
        """Set the budget from the pages `events` added to the log, as this checkpoint found it."""
        new_frames = frames
        if self._last_log is not None:
            last_frames, last_complete = self._last_log
            # After a complete checkpoint the next commit starts the log
            # afresh; after one that was not, the log went on from there.
            # Either way, when in doubt this counts more pages, not fewer.
            if not last_complete and frames >= last_frames:
                new_frames = frames - last_frames
        self._last_log = (frames, copied >= frames)
        if events and new_frames > 0:
            self.budget = max(MIN_EVENTS, min(MAX_EVENTS, TARGET_FRAMES * events // new_frames))
