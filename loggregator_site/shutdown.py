"""Turn SIGTERM and SIGINT into a stop event for the duration of a block."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(
    stop: threading.Event,
    on_signal: Callable[[int], None] | None = None,
    signals: tuple[int, ...] = STOP_SIGNALS,
) -> Iterator[None]:
    """Set `stop` on the first signal and restore the previous handlers.

    Restoring them at once means a second Ctrl-C (or SIGTERM) acts as if we
    had never installed anything: it interrupts immediately. Signal handlers
    can only be installed from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def handle(signum: int, frame: object) -> None:
        restore()
        stop.set()
        if on_signal is not None:
            on_signal(signum)

    for signum in signals:
        previous[signum] = signal.signal(signum, handle)
    try:
        yield
    finally:
        restore()
