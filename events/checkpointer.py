"""SQLite's WAL checkpoints on a thread of their own, beside the consumer.

A checkpoint copies what recent commits wrote to the write-ahead log into the
database file and syncs it: ~20 ms per 5,000 stored events. It needs no write
lock (events.db.checkpoint), so a thread of its own does it while the consumer
goes on reading and storing the next batch, instead of the consumer pausing
for it. Requests that arrive while one runs are folded into the next.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError

from events import db
from events.web_thread import WebThread

logger = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, name: str = "loggregator-checkpointer"):
        self._due = threading.Event()
        # Stopping also sets _due, so an idle wait ends at once.
        self._thread = WebThread(name, on_stop=self._due.set)

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
            try:
                db.checkpoint()
            except DatabaseError:
                # The next commit past SQLite's own threshold checkpoints instead.
                logger.warning("WAL checkpoint failed", exc_info=True)
