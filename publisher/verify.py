"""Check an aggregator's /stats deltas against what a round sent.

This is how a user proves an aggregator is exactly-once: after a round, every
original the round sent must show up as exactly one `unique_processed` and
every re-send as one `duplicate_dropped`. It assumes nobody else publishes
to the same aggregator while the round runs and is checked.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import requests

from publisher.client import AggregatorClient

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class Stats:
    received: int
    unique_processed: int
    duplicate_dropped: int
    queued: int

    @classmethod
    def from_json(cls, data: dict) -> Stats:
        return cls(
            received=int(data["received"]),
            unique_processed=int(data["unique_processed"]),
            duplicate_dropped=int(data["duplicate_dropped"]),
            queued=int(data["queued"]),
        )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def poll_stats(
    client: AggregatorClient,
    stop: threading.Event,
    timeout: float,
    until,
) -> Stats | None:
    """Poll /stats until `until(stats)` is true; None if stopped first.

    Raises TimeoutError when the deadline passes; a failing /stats is retried
    until then.
    """
    deadline = time.monotonic() + timeout
    problem = "no answer yet"
    while True:
        try:
            stats = Stats.from_json(client.stats())
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            problem = f"/stats failed: {type(exc).__name__}: {exc}"
            logger.warning("Polling %s/stats: %s", client.base_url, problem)
        else:
            if until(stats):
                return stats
            problem = f"last /stats: {stats}"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:g} s ({problem})")
        if stop.wait(POLL_INTERVAL):
            return None


def wait_for_idle(client: AggregatorClient, stop: threading.Event, timeout: float) -> Stats | None:
    """The baseline: /stats once nothing is queued, so later deltas are ours."""
    return poll_stats(client, stop, timeout, lambda stats: stats.queued == 0)


def wait_until_processed(
    client: AggregatorClient,
    stop: threading.Event,
    timeout: float,
    *,
    baseline: Stats,
    sent: int,
) -> Stats | None:
    """/stats once the aggregator received everything sent and queued nothing."""
    return poll_stats(
        client,
        stop,
        timeout,
        lambda stats: stats.queued == 0 and stats.received - baseline.received >= sent,
    )


def check(baseline: Stats, after: Stats, *, unique: int, duplicates: int, resent: int) -> Verdict:
    """Compare the deltas with what a round sent.

    `resent` counts events in requests that were retried after an attempt
    that may have reached the aggregator (say, a timeout after it committed).
    If such an attempt did land, the retry is a real second copy: the
    aggregator rightly drops it as a duplicate. We cannot know how many of
    them landed, so the duplicate delta is accepted anywhere in
    `[duplicates, duplicates + resent]`. The unique delta has no such slack:
    a landed attempt and its retry still make exactly one original, so it must
    equal `unique` exactly whatever happened on the wire.
    """
    unique_delta = after.unique_processed - baseline.unique_processed
    duplicate_delta = after.duplicate_dropped - baseline.duplicate_dropped
    problems = []
    if unique_delta != unique:
        problems.append(f"unique_processed grew by {unique_delta}, expected {unique}")
    if not duplicates <= duplicate_delta <= duplicates + resent:
        expected = f"{duplicates}" if not resent else f"{duplicates}..{duplicates + resent}"
        problems.append(f"duplicate_dropped grew by {duplicate_delta}, expected {expected}")
    if problems:
        return Verdict(False, "; ".join(problems))
    return Verdict(True, f"unique +{unique_delta}, duplicates +{duplicate_delta}")
