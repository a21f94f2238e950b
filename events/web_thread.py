"""A background thread of a web process: started once, stopped at exit after the work in hand.

The in-process consumer (events.background) and the pruner (events.pruner)
run this way. `target(stop)` runs until `stop` is set; it must return soon
after. The thread is a daemon, stopped by an atexit hook, so interpreter
shutdown never waits on an idle wait.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger(__name__)


class WebThread:
    def __init__(self, name: str, *, on_stop: Callable[[], None] | None = None):
        self.name = name
        self.stop_event = threading.Event()
        # Called after stop_event is set, e.g. to cut an idle wait short.
        self._on_stop = on_stop
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, target: Callable[[threading.Event], None]) -> bool:
        """Run target(stop_event) in the thread; False if it already runs."""
        with self._lock:
            if self._thread is not None:
                return False
            self.stop_event.clear()
            self._thread = threading.Thread(target=self._run, args=(target,), name=self.name, daemon=True)
            self._thread.start()
        atexit.register(self.stop)
        return True

    def _run(self, target: Callable[[threading.Event], None]) -> None:
        try:
            target(self.stop_event)
        finally:
            connections.close_all()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the work in hand; safe to call more than once. False if it outlived `timeout`."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return True
        self.stop_event.set()
        if self._on_stop is not None:
            self._on_stop()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("%s did not stop within %.0f s", self.name, timeout)
            return False
        return True
