"""The web process's consumer, run as a child process: `manage.py run_consumer --controlled-by-stdin`.

A consumer thread shares its web process's interpreter, and so the GIL, with
the threads that validate publishes: each waits for the other. A child of its
own runs beside them on another core (batches of 5000 were stored ~35% faster
end to end that way; README, "The consumer in a process of its own").

The child's standard input is the only channel: a byte means this process
committed new work (the child wakes at once instead of at its next poll), and
its end means stop after the batch in hand. The end comes however this process
ends, a SIGKILL included, so a child never outlives its web process. It stays
in the web process's process group: Ctrl-C in a terminal, or a kill of the
whole group, reaches it too.

A child that dies (a crash, the OOM killer) is started again; one that exits
cleanly was told to stop by a signal (the group's Ctrl-C or SIGTERM) and is
not. Whatever was in hand when it died is still queued and is stored by the
next one, once.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from django.conf import settings

from events import wakeup

logger = logging.getLogger(__name__)

# How often the supervising thread looks whether the child is still there, at most.
CHECK_INTERVAL = 0.5
# A child that dies is started again after this long, doubling up to the most.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
# How long a stopping child may take to finish its batch before it is killed
# (its transaction then rolls back; the batch stays queued).
STOP_TIMEOUT = 30.0


def command() -> list[str]:
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), "run_consumer", "--controlled-by-stdin"]


def run(stop: threading.Event) -> None:
    """Keep a child consumer running until `stop` is set, then stop it after its batch."""
    delay = RESTART_DELAY
    while not stop.is_set():
        # Its report goes where this process logs (stderr), not into this process's output.
        child = subprocess.Popen(command(), stdin=subprocess.PIPE, stdout=sys.stderr, cwd=settings.BASE_DIR)
        started = time.monotonic()
        logger.info("Consumer process %d started", child.pid)
        _forward_wakeups(child, stop)
        if stop.is_set():
            _stop(child)
            return
        if child.returncode == 0:
            logger.info("Consumer process %d was stopped; it stays stopped until this process restarts", child.pid)
            stop.wait()
            return
        if time.monotonic() - started > MAX_RESTART_DELAY:
            delay = RESTART_DELAY  # it had been running well: not a crash loop
        logger.warning(
            "Consumer process %d exited with %s; starting another in %.0f s", child.pid, child.returncode, delay
        )
        stop.wait(delay)
        delay = min(MAX_RESTART_DELAY, delay * 2)


def _forward_wakeups(child: subprocess.Popen, stop: threading.Event) -> None:
    """Until `stop` or the child's exit: tell the child of each commit of new work in this process."""
    pipe = child.stdin.fileno()
    # A full pipe already holds wake-ups the child has not read: never wait for it.
    os.set_blocking(pipe, False)
    while child.poll() is None and not stop.is_set():
        if wakeup.new_work.wait(CHECK_INTERVAL):
            wakeup.new_work.clear()
            try:
                os.write(pipe, b"\n")
            except (BlockingIOError, BrokenPipeError):  # full, or the child is exiting (poll() says so next)
                pass


def _stop(child: subprocess.Popen) -> None:
    try:
        child.stdin.close()  # end of input: stop after the batch in hand
    except BrokenPipeError:
        pass
    try:
        code = child.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        logger.warning("Consumer process %d did not stop within %.0f s; killing it", child.pid, STOP_TIMEOUT)
        child.kill()
        code = child.wait()
    logger.info("Consumer process %d stopped (exit code %s)", child.pid, code)


def follow_parent(*, on_input: Callable[[], None], on_end: Callable[[], None]) -> threading.Thread:
    """In the child: call `on_input` at each read of standard input, `on_end` at its end (the parent is gone)."""
    thread = threading.Thread(
        target=_read_parent_input, args=(on_input, on_end), name="loggregator-parent-input", daemon=True
    )
    thread.start()
    return thread


def _read_parent_input(on_input: Callable[[], None], on_end: Callable[[], None]) -> None:
    fd = sys.stdin.fileno()
    while os.read(fd, 4096):
        on_input()
    on_end()
