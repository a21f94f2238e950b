"""The consumer thread that runs inside each web process by default.

So that `manage.py runserver` (or gunicorn) alone works end to end. Turn it
off with LOGGREGATOR_INPROCESS_CONSUMER=false when dedicated `run_consumer`
processes drain the queue. On SQLite one web process's thread consumes at a
time and the others stand by (events.db.sole_consumer).
"""

from __future__ import annotations

import atexit
import logging
import threading

from django.db import connections

from events.consumer import Consumer
from events.db import sole_consumer

logger = logging.getLogger(__name__)

_running: tuple[Consumer, threading.Thread] | None = None
_lock = threading.Lock()


def start_consumer_thread() -> None:
    global _running
    with _lock:
        if _running is not None:
            return
        consumer = Consumer.from_settings()
        # A daemon thread, stopped at exit (below) after its current batch:
        # interpreter shutdown then never waits on an idle poll.
        thread = threading.Thread(target=_run, args=(consumer,), name="loggregator-consumer", daemon=True)
        _running = (consumer, thread)
        thread.start()
        atexit.register(stop_consumer_thread)
        logger.info("In-process consumer started")


def _run(consumer: Consumer) -> None:
    try:
        with sole_consumer(consumer.stop_requested) as active:
            if active:
                logger.info("In-process consumer active")
                consumer.run()
    finally:
        connections.close_all()


def stop_consumer_thread(timeout: float = 30.0) -> None:
    """Stop the thread after the batch it is storing; safe to call more than once."""
    global _running
    with _lock:
        running, _running = _running, None
    if running is None:
        return
    consumer, thread = running
    consumer.stop()
    thread.join(timeout)
    if thread.is_alive():
        logger.warning("In-process consumer did not stop within %.0f s", timeout)
    else:
        logger.info("In-process consumer stopped")
