"""Generate rounds of demo events with an exact number of duplicates.

Nothing here does I/O: given the same seed, the same clock and the same calls
to `remember()`, a generator produces the same rounds.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DOMAINS = ("orders", "payments", "users", "inventory", "shipping", "auth", "billing", "search")
REGIONS = ("eu", "us", "ap")
ACTIONS = ("created", "updated", "deleted", "failed", "completed")
SOURCES = ("svc-a", "svc-b", "svc-c", "svc-d")
LEVELS = ("debug", "info", "info", "info", "warning", "error")

# Share of a round's duplicates that re-send events from earlier rounds (once
# there are earlier rounds); the rest re-send events from the same round.
EARLIER_ROUND_SHARE = 0.5
# How many earlier events are kept as candidates for cross-round duplicates.
# A reservoir sample keeps memory flat however long the publisher runs.
HISTORY_SIZE = 50_000

Event = dict


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_topics(count: int, rng: random.Random) -> list[str]:
    """Return `count` distinct topics such as `orders.eu.created`."""
    combos = [f"{d}.{r}.{a}" for d in DOMAINS for r in REGIONS for a in ACTIONS]
    rng.shuffle(combos)
    if count <= len(combos):
        return combos[:count]
    extra = [f"{combos[i % len(combos)]}.shard{i // len(combos)}" for i in range(len(combos), count)]
    return combos + extra


@dataclass(frozen=True)
class Round:
    """The events of one round in send order.

    `duplicate[i]` is True when `events[i]` re-sends an event that was
    sent before it: earlier in this round, or in an earlier round.
    """

    events: list[Event]
    duplicate: list[bool]

    @property
    def duplicates(self) -> int:
        return sum(self.duplicate)

    @property
    def unique(self) -> int:
        return len(self.events) - self.duplicates


class EventGenerator:
    """Makes rounds of events; a duplicate is a real re-send.

    A duplicate keeps the topic, event_id, source and payload of its original
    and gets a new, later timestamp, like a publisher that retries. Event ids
    come from the generator's own `random.Random`: random per run unless a
    seed is given, in which case every run produces the same ids.
    """

    def __init__(
        self,
        *,
        topics: int,
        seed: int | None = None,
        clock: Callable[[], datetime] = utc_now,
        history_size: int = HISTORY_SIZE,
    ) -> None:
        if topics < 1:
            raise ValueError("topics must be at least 1")
        self._rng = random.Random(seed)
        self._clock = clock
        self._history: list[Event] = []
        self._history_size = history_size
        self._remembered = 0
        self._sequence = 0
        self.topics = make_topics(topics, self._rng)

    def next_round(self, size: int, duplicate_ratio: float) -> Round:
        """Return `size` events, exactly `round(size * duplicate_ratio)` of them duplicates.

        The one exception: when nothing has been remembered yet, at least one
        event must be an original, so the duplicates are capped at `size - 1`.
        """
        if size < 0:
            raise ValueError("size must not be negative")
        if not 0 <= duplicate_ratio < 1:
            raise ValueError("duplicate_ratio must be >= 0 and < 1")
        rng = self._rng
        duplicates = round(size * duplicate_ratio)
        if not self._history:
            duplicates = min(duplicates, max(size - 1, 0))
        if not self._history:
            from_earlier = 0
        elif duplicates == size:
            from_earlier = duplicates  # no original in this round to copy
        else:
            from_earlier = round(duplicates * EARLIER_ROUND_SHARE)
        originals = [self._new_event() for _ in range(size - duplicates)]

        # Order by a sort key: originals sit at 0, 1, 2, ...; a copy of the
        # original at position p gets a key in (p, len(originals)) so it is
        # always sent after its original; re-sends from earlier rounds go
        # anywhere.
        keyed: list[tuple[float, bool, Event]] = [
            (float(position), False, event) for position, event in enumerate(originals)
        ]
        for _ in range(from_earlier):
            keyed.append((rng.uniform(0, len(originals)), True, rng.choice(self._history)))
        for _ in range(duplicates - from_earlier):
            position = rng.randrange(len(originals))
            key = rng.uniform(position, len(originals))
            keyed.append((max(key, position + 1e-9), True, originals[position]))
        keyed.sort(key=lambda item: item[0])

        # Timestamps grow in send order, so every copy is newer than its original.
        start = self._clock()
        events = [
            {**event, "timestamp": format_timestamp(start + timedelta(microseconds=i))}
            for i, (_, _, event) in enumerate(keyed)
        ]
        return Round(events=events, duplicate=[is_copy for _, is_copy, _ in keyed])

    def remember(self, events: Iterable[Event]) -> None:
        """Offer events the aggregator accepted as originals for later re-sends.

        Only accepted events may be re-sent as duplicates in later rounds: a
        re-send of an event the aggregator never got would be a new event.
        """
        rng = self._rng
        for event in events:
            kept = {key: value for key, value in event.items() if key != "timestamp"}
            self._remembered += 1
            if len(self._history) < self._history_size:
                self._history.append(kept)
            else:
                slot = rng.randrange(self._remembered)
                if slot < self._history_size:
                    self._history[slot] = kept

    def _new_event(self) -> Event:
        rng = self._rng
        self._sequence += 1
        topic = rng.choice(self.topics)
        level = rng.choice(LEVELS)
        return {
            "topic": topic,
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "source": rng.choice(SOURCES),
            "payload": {
                "sequence": self._sequence,
                "level": level,
                "message": f"{topic.split('.')[-1]} {level}",
                "latency_ms": rng.randint(1, 2000),
            },
        }
