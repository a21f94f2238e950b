"""Backpressure: refuse new work (503 + Retry-After) while the backlog is over its limit."""

from __future__ import annotations

import threading
import time

from django.conf import settings

from events import counters
from events.exceptions import QueueFull

# How long a count of the backlog stands in for a new one while it is under half the limit.
RECOUNT_INTERVAL = 0.1


class BacklogEstimate:
    """The backlog as this process last counted it, plus what it has accepted since.

    Counting it is a SUM over the counter rows, a query per publish that cost
    ~5% of a single-event publish. Far from the limit the exact figure does not
    change the answer, so while the estimate is under half the limit a count up
    to RECOUNT_INTERVAL old is reused; from half the limit on, every request
    counts. Other processes' publishes are missed for at most that interval: to
    overshoot because of it, they would have to add half the limit within it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._queued = 0
        self._counted_at = float("-inf")

    def queued(self, limit: int) -> int:
        now = time.monotonic()
        with self._lock:
            if now - self._counted_at < RECOUNT_INTERVAL and self._queued < limit // 2:
                return self._queued
        return self._count(now)

    def refresh_if_aging(self) -> None:
        """Count afresh once the count is past half its life, so that known_under() stays true under load.

        For a thread that may query while publishes go on without one
        (events.intake's writer, for events.publish_fast_path).
        """
        now = time.monotonic()
        with self._lock:
            if now - self._counted_at < RECOUNT_INTERVAL / 2:
                return
        self._count(now)

    def _count(self, now: float) -> int:
        queued = counters.queued_total()
        with self._lock:
            self._queued, self._counted_at = queued, now
        return queued

    def known_under(self, limit: int) -> bool:
        """True when a count reused by queued() would show the backlog under half of `limit`; never queries."""
        with self._lock:
            return time.monotonic() - self._counted_at < RECOUNT_INTERVAL and self._queued < limit // 2

    def add(self, events: int) -> None:
        """`events` were committed to the queue by this process."""
        with self._lock:
            self._queued += events

    def forget(self) -> None:
        """Count afresh at the next request (the database changed under the estimate, as tests do)."""
        with self._lock:
            self._counted_at = float("-inf")


backlog = BacklogEstimate()


def refuse_when_backlogged() -> None:
    """503 while the backlog is over its limit; call it before reading the body.

    A soft limit: requests checked at the same moment may all pass, so the
    backlog can overshoot by what they carry (and see BacklogEstimate).
    """
    config = settings.LOGGREGATOR
    limit = config["MAX_QUEUED_EVENTS"]
    if limit and (queued := backlog.queued(limit)) >= limit:
        raise QueueFull(queued=queued, limit=limit, retry_after=config["BACKPRESSURE_RETRY_AFTER"])
