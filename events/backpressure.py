"""Backpressure: refuse new work (503 + Retry-After) while the backlog is over its limit."""

from __future__ import annotations

from django.conf import settings

from events import counters
from events.exceptions import QueueFull


def refuse_when_backlogged() -> None:
    """503 while the backlog is over its limit; call it before reading the body.

    A soft limit: requests checked at the same moment may all pass, so the
    backlog can overshoot by what they carry.
    """
    config = settings.LOGGREGATOR
    limit = config["MAX_QUEUED_EVENTS"]
    if limit and (queued := counters.queued_total()) >= limit:
        raise QueueFull(queued=queued, limit=limit, retry_after=config["BACKPRESSURE_RETRY_AFTER"])
