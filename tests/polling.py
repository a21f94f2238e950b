"""Waiting for asynchronous results: poll a condition until a deadline, never sleep and hope."""

import time

# Generous on purpose: a deadline only turns a hang into a failure; it never
# measures speed on this shared machine.
DEFAULT_DEADLINE = 120.0


def wait_for(condition, *, deadline: float = DEFAULT_DEADLINE, interval: float = 0.02, message: str = ""):
    """Return condition()'s first truthy value; fail if none comes before the deadline."""
    give_up = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"Timed out after {deadline:.0f} s waiting for {message or condition}")
        time.sleep(interval)  # poll interval, not a wait for the result
