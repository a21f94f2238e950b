"""The stored events a live stream sends, read from the database as ready SSE messages.

Every worker with open streams reads every stored event its streams want, so
this read is the live tail's main cost per event. The database builds each
event's JSON (the `data:` line) and its cursor's timestamp in one query;
Python only assembles the message. The JSON is byte for byte what msgspec
would write for the event: keys in this order, no spaces, the timestamp in
UTC with `Z` (microseconds only when not zero), the event id in canonical
form, the payload as the database holds it (never decoded here).

A stream with filters beyond its topic pattern (`source`, `q`, `payload.…`)
tests them on a StoredEvent, built only then.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.db import connection

from events import stream_cursor
from events.commit_log import Commit
from events.models import Event
from events.stream_cursor import Key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Per database: the event's timestamp in microseconds since the epoch (exact
# integers), and its JSON as text. Stored timestamps are naive UTC text on
# SQLite ("2026-11-26 12:00:00[.123456]"), timestamptz on PostgreSQL.
_SQLITE = (
    "CAST(strftime('%%s', substr(timestamp, 1, 19)) AS INTEGER) * 1000000"
    " + CAST(substr(timestamp || '.000000', 21, 6) AS INTEGER)",
    """'{"topic":' || json_quote(topic) || ',"event_id":"' || substr(event_id, 1, 8) || '-'"""
    " || substr(event_id, 9, 4) || '-' || substr(event_id, 13, 4) || '-' || substr(event_id, 17, 4) || '-'"
    """ || substr(event_id, 21) || '","timestamp":"' || replace(timestamp, ' ', 'T') || 'Z","source":'"""
    """ || json_quote(source) || ',"payload":' || payload || '}'""",
    "payload",
)
_POSTGRESQL = (
    "(EXTRACT(EPOCH FROM timestamp) * 1000000)::bigint",
    """'{"topic":' || to_json(topic)::text || ',"event_id":"' || event_id::text || '","timestamp":"'"""
    """ || to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')"""
    " || CASE WHEN EXTRACT(MICROSECONDS FROM timestamp) %% 1000000 = 0 THEN ''"
    " ELSE to_char(timestamp AT TIME ZONE 'UTC', '.US') END"
    """ || 'Z","source":' || to_json(source)::text || ',"payload":' || payload::text || '}'""",
    "payload::text",
)


class StoredEvent:
    """What a stream's filters look at (events.query.EventQuery.matches), without a model instance.

    The payload stays the JSON text the database holds (what `q=` searches)
    and is decoded only if a filter looks at it.
    """

    __slots__ = ("topic", "timestamp", "source", "payload_text", "_payload")

    def __init__(self, topic: str, timestamp: datetime, source: str, payload_text: str):
        self.topic, self.timestamp, self.source, self.payload_text = topic, timestamp, source, payload_text
        self._payload = None

    @property
    def payload(self):
        if self._payload is None:
            self._payload = json.loads(self.payload_text)
        return self._payload


class StreamItem(NamedTuple):
    # A tuple, cheap to build by the thousand; keys are unique, so items sort by key alone.
    key: Key
    message: bytes  # the SSE message, ready to send
    topic: str
    source: str
    payload_text: str

    def event(self) -> StoredEvent:
        timestamp = _EPOCH + timedelta(microseconds=self.key[1])
        return StoredEvent(self.topic, timestamp, self.source, self.payload_text)


def read_items(commits: Iterable[Commit], topics: Iterable[str]) -> dict[str, list[StreamItem]]:
    """The events `commits` stored under `topics` as SSE messages, by topic, each list in stream order."""
    positions = {commit.id: commit.position for commit in commits}
    topics = list(topics)
    if not positions or not topics:
        return {}
    timestamp_us, data, payload = _POSTGRESQL if connection.vendor == "postgresql" else _SQLITE
    sql = (
        f"SELECT store_commit_id, {timestamp_us}, id, topic, source, {payload}, {data}"
        f" FROM {connection.ops.quote_name(Event._meta.db_table)}"
        f" WHERE store_commit_id IN ({', '.join(['%s'] * len(positions))})"
        f" AND topic IN ({', '.join(['%s'] * len(topics))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*positions, *topics])
        rows = cursor.fetchall()
    by_topic: dict[str, list[StreamItem]] = defaultdict(list)
    for commit_id, microseconds, pk, topic, source, payload_text, event_json in rows:
        key = (positions[commit_id], microseconds, pk)
        message = b"id: %s\nevent: event\ndata: %s\n\n" % (stream_cursor.encode(key).encode(), event_json.encode())
        by_topic[topic].append(StreamItem(key, message, topic, source, payload_text))
    for items in by_topic.values():
        items.sort()
    return dict(by_topic)
