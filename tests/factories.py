import itertools
import uuid
from datetime import UTC, datetime, timedelta

_clock = itertools.count()
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def event(topic: str = "orders.eu.created", *, event_id=None, timestamp=None, source="svc-a", payload=None) -> dict:
    """A valid published event; each call is a new event with a later timestamp."""
    if timestamp is None:
        timestamp = (BASE_TIME + timedelta(milliseconds=next(_clock))).isoformat().replace("+00:00", "Z")
    return {
        "topic": topic,
        "event_id": str(event_id or uuid.uuid4()),
        "timestamp": timestamp,
        "source": source,
        "payload": {"n": 1} if payload is None else payload,
    }


def events(count: int, topic: str = "orders.eu.created", **fields) -> list[dict]:
    return [event(topic, **fields) for _ in range(count)]
