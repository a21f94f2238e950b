"""Automatic retention: a thread in each web process prunes every LOGGREGATOR_PRUNE_INTERVAL seconds.

Started by the WSGI module when a retention is configured. Several processes
pruning at once stay exact (each counts only the rows its own transaction
deleted; on PostgreSQL they skip each other's rows), so no election is needed.
Stopping lets the chunk in hand commit.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from events import retention
from events.web_thread import WebThread

logger = logging.getLogger(__name__)

_thread = WebThread("loggregator-pruner")


def run(stop: threading.Event, *, interval: float, policy: retention.RetentionPolicy) -> None:
    """Prune every `interval` seconds until `stop` is set; errors are logged and retried next round.

    Each pass spreads its deletions over half the interval (retention._Pace),
    so publishes meet a chunk now and then rather than a burst of them.
    """
    while not stop.is_set():
        started = time.monotonic()
        close_old_connections()
        try:
            report = retention.prune(policy, within=interval / 2, stop=stop)
        except DatabaseError:
            # Every chunk is its own transaction: what committed stays, the rest is due next round.
            logger.exception("Pruning failed; retrying in %.0f s", interval)
        else:
            if report.events.total() or report.tombstones.total():
                logger.info("Pruned %d events, expired %d tombstones", report.events.total(), report.tombstones.total())
        stop.wait(max(0.0, started + interval - time.monotonic()))


def start_pruning_thread() -> None:
    """Start pruning in this process if a retention is configured and automatic pruning is on."""
    policy = retention.RetentionPolicy.from_settings()
    interval = settings.LOGGREGATOR["PRUNE_INTERVAL"]
    if not policy.keeps_everything and interval > 0:
        _thread.start(lambda stop: run(stop, interval=interval, policy=policy))


def stop_pruning_thread(timeout: float = 30.0) -> None:
    """Stop after the chunk in hand; safe to call more than once."""
    _thread.stop(timeout)
