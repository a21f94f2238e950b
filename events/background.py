"""The consumer that each web process runs by default, from a thread of its own.

So that `manage.py runserver` (or gunicorn) alone works end to end. Turn it
off with LOGGREGATOR_INPROCESS_CONSUMER=false when dedicated `run_consumer`
processes drain the queue. On SQLite one web process's thread consumes at a
time and the others stand by (events.db.sole_consumer). The thread consumes
itself, or (the default) keeps a child process consuming for it
(events.consumer_process).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from events import consumer_process, wakeup
from events.consumer import Consumer
from events.db import sole_consumer
from events.web_thread import WebThread

logger = logging.getLogger(__name__)

# Stopping also sets the wake-up, so an idle consumer does not wait out its poll.
_thread = WebThread("loggregator-consumer", on_stop=wakeup.new_work.set)


def start_consumer_thread() -> None:
    consumer = Consumer.from_settings()
    if _thread.start(lambda stop: _run(consumer, stop)):
        logger.info("In-process consumer started")


def _run(consumer: Consumer, stop: threading.Event) -> None:
    with sole_consumer(stop) as active:
        if not active:
            return
        # This process's publishes now wake its own consumer, in-process.
        wakeup.local_consumer.set()
        try:
            if settings.LOGGREGATOR["CONSUMER_CHILD_PROCESS"]:
                consumer_process.run(stop)
            else:
                logger.info("In-process consumer active")
                consumer.run(stop)
        finally:
            wakeup.local_consumer.clear()


def stop_consumer_thread(timeout: float = 30.0) -> None:
    """Stop the thread after the batch it is storing; safe to call more than once."""
    if _thread.stop(timeout):
        logger.info("In-process consumer stopped")
