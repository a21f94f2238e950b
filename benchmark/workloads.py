"""The benchmark's workloads and the request bodies they send.

Everything a workload sends is generated and serialised here, before the
clock starts, with the publisher's own EventGenerator: duplicates are real
re-sends (same topic, event_id, source and payload, a later timestamp). The
expected unique and duplicate counts are taken from the bodies themselves, so
a run can be checked exactly against /stats.

No Django here: the load driver imports this in a process of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import msgspec

from publisher.generator import EventGenerator

DUPLICATE_RATIO = 0.25
TOPICS = 8
# The publisher's default largest batch: a "mixed" round looks like its rounds.
PUBLISHER_MAX_BATCH = 500
ROUND_EVENTS = 5000


@dataclass(frozen=True)
class Workload:
    """What one workload sends.

    `batch` is the events per request (1 = single event objects, not arrays);
    None means publisher-like rounds, alternately of single events and of
    batches of random size up to PUBLISHER_MAX_BATCH. `stored_target`, for
    the long run, sets the events to send so that this many are stored.
    """

    name: str
    description: str
    events: int
    batch: int | None
    connections: int
    duplicate_ratio: float = DUPLICATE_RATIO
    stored_target: int | None = None
    # The long run: /stats timeline, RSS over time, read latency at ~1k and at the end.
    long_run: bool = False
    # Events stored in one topic before the clock starts, for the read latency "at 1k".
    preload: int = 0

    def with_events(self, events: int) -> Workload:
        if self.stored_target is not None:
            sent = _events_to_store(events, self.batch, self.duplicate_ratio)
            return replace(self, stored_target=events, events=sent)
        return replace(self, events=events)


def _events_to_store(stored: int, batch: int, duplicate_ratio: float) -> int:
    """Whole batches, enough of them that at least `stored` events are unique."""
    unique_per_batch = batch - round(batch * duplicate_ratio)
    return math.ceil(stored / unique_per_batch) * batch


def _million(stored: int) -> Workload:
    return Workload(
        name="million",
        description=f"{stored:,} stored events in batches of 5000, 2 connections",
        events=_events_to_store(stored, 5000, DUPLICATE_RATIO),
        batch=5000,
        connections=2,
        stored_target=stored,
        long_run=True,
        preload=1000,
    )


FULL = {
    "batch5000": Workload("batch5000", "batches of 5000, 2 connections", 200_000, 5000, 2),
    "batch500x4": Workload("batch500x4", "batches of 500, 4 connections", 100_000, 500, 4),
    "single16": Workload("single16", "single events, 16 connections", 20_000, 1, 16),
    "mixed": Workload("mixed", "publisher-like rounds: single / batches of 1-500, 4 connections", 20_000, None, 4),
    "million": _million(1_000_000),
}
QUICK = {
    "batch5000": replace(FULL["batch5000"], events=10_000),
    "batch500x4": replace(FULL["batch500x4"], events=5_000),
    "single16": replace(FULL["single16"], events=1_000),
    "mixed": replace(FULL["mixed"], events=4_000),
    "million": _million(20_000),
}
NAMES = tuple(FULL)


@dataclass
class Plan:
    """The serialised requests of one workload and what /stats must show after them."""

    bodies: list[bytes]
    sizes: list[int]
    unique: int
    duplicates: int
    topics: list[str] = field(default_factory=list)
    # Sent before the clock starts (the long run's first thousand, in one topic).
    preload_bodies: list[bytes] = field(default_factory=list)
    preload_events: int = 0
    measured_topic: str | None = None

    @property
    def events(self) -> int:
        return sum(self.sizes)

    @property
    def body_bytes(self) -> int:
        return sum(len(body) for body in self.bodies)


def build_plan(workload: Workload, *, seed: int) -> Plan:
    """Generate and serialise every request of `workload`."""
    generator = EventGenerator(topics=TOPICS, seed=seed)
    rng = random.Random(f"requests-{seed}")
    encode = msgspec.json.Encoder().encode
    bodies: list[bytes] = []
    sizes: list[int] = []
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for round_number, events in enumerate(_rounds(generator, workload)):
        for event in events:
            key = (event["topic"], event["event_id"])
            if key in seen:
                duplicates += 1
            else:
                seen.add(key)
        for request in _split(events, workload.batch, round_number, rng):
            bodies.append(encode(request))
            sizes.append(1 if isinstance(request, dict) else len(request))
    plan = Plan(bodies=bodies, sizes=sizes, unique=len(seen), duplicates=duplicates, topics=generator.topics)
    if workload.preload:
        plan.measured_topic = generator.topics[0]
        preload = EventGenerator(topics=1, seed=seed + 1).next_round(workload.preload, 0.0).events
        plan.preload_bodies = [encode([{**event, "topic": plan.measured_topic} for event in preload])]
        plan.preload_events = len(preload)
    return plan


def _rounds(generator: EventGenerator, workload: Workload) -> Iterator[list[dict]]:
    """Rounds of events; every original is remembered, so later rounds re-send earlier ones too."""
    if workload.batch is None:
        # At least four rounds, so single-event and batch rounds alternate.
        round_size = max(1, min(ROUND_EVENTS, workload.events // 4))
    else:
        round_size = max(workload.batch, ROUND_EVENTS)
    remaining = workload.events
    while remaining > 0:
        round_ = generator.next_round(min(round_size, remaining), workload.duplicate_ratio)
        generator.remember(event for event, copy in zip(round_.events, round_.duplicate) if not copy)
        remaining -= len(round_.events)
        yield round_.events


def _split(events: list[dict], batch: int | None, round_number: int, rng: random.Random) -> Iterator[list | dict]:
    if batch == 1 or (batch is None and round_number % 2 == 1):
        yield from events
        return
    start = 0
    while start < len(events):
        size = batch or rng.randint(1, PUBLISHER_MAX_BATCH)
        yield events[start : start + size]
        start += size
