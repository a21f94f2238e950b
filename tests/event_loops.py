"""Running a coroutine from a test, whatever else the test process runs."""

import asyncio
from concurrent.futures import ThreadPoolExecutor


def run(coroutine):
    """asyncio.run(coroutine) in a thread of its own.

    The browser tests' Playwright keeps an event loop running in the main
    thread of the pytest worker that ran them, where asyncio.run() refuses
    to start another.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-event-loop") as thread:
        return thread.submit(asyncio.run, coroutine).result()
