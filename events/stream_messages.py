"""The stored events a live stream sends, read from the database as ready SSE messages.

Every process with open streams reads every stored event its streams want,
so this read is the live tail's main cost per event. The JSON (the `data:`
line) is byte for byte what msgspec writes for the event: keys in this order,
no spaces, the timestamp in UTC with `Z` (microseconds only when not zero),
the event id in canonical form, the payload as the database holds it (never
decoded here).

Who builds it depends on where the work is cheapest for the write path. SQLite
runs in this process, so it builds each message in the query (one `printf`),
and Python only joins them. A PostgreSQL server would build them in its own
process, at its normal CPU priority, beside the consumers' inserts, whatever
priority the stream process runs at (README, "A stream process"); there the
query returns the plain columns, in binary (no numeric EXTRACT of the
timestamp, no text to parse here), and msgspec builds each message here.

What the watcher reads for all its streams at once (read_for_streams) is one
query on PostgreSQL, whatever the patterns: a query per pattern read the
same commit's pages once per pattern, ~1 µs of server CPU per event more. On
SQLite each pattern's messages are joined by its own query (SQLite's
group_concat), with no Python per event.

A stream with filters beyond its topic pattern (`source`, `q`, `payload.…`)
tests them on a StoredEvent, built only then.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import attrgetter
from typing import NamedTuple

import msgspec
import psycopg
from django.db import connection

from events.commit_log import Commit
from events.models import Event, StoreCommit
from events.stream_cursor import Key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- SQLite: the query builds the messages -----------------------------------
# Stored timestamps are naive UTC text ("2026-11-26 12:00:00[.123456]"). `%%`
# is a literal `%` once parameters are bound.
#
# SQLite builds the JSON with one printf: its || copies the whole string so far
# at each of a message's ~20 steps (building the whole message, 420,000 rows:
# 2.2 µs per event that way, 1.9 as one printf). The event id is 32 hex digits.
_SQLITE_DATA_FORMAT = (
    '{"topic":%%s,"event_id":"%%.8s-%%.4s-%%.4s-%%.4s-%%s","timestamp":"%%sZ","source":%%s,"payload":%%s}'
)
_SQLITE_DATA_VALUES = (
    "json_quote(topic), event_id, substr(event_id, 9), substr(event_id, 13), substr(event_id, 17),"
    " substr(event_id, 21), replace(timestamp, ' ', 'T'), json_quote(source), payload"
)
# The timestamp in microseconds since the epoch, an exact integer: the whole
# seconds, then the six digits after the point ('' when there are none: 0).
_SQLITE_TIMESTAMP_US = "unixepoch(substr(timestamp, 1, 19)) * 1000000 + CAST(substr(timestamp, 21) AS INTEGER)"
# A whole message of a row with the columns position, timestamp_us and pk, in one printf.
_SQLITE_MESSAGE = (
    f"printf('id: %%d-%%d-%%d\nevent: event\ndata: {_SQLITE_DATA_FORMAT}\n\n',"
    f" position, timestamp_us, pk, {_SQLITE_DATA_VALUES})"
)

# --- PostgreSQL: the query returns the columns, msgspec builds the messages ---
_MICROSECOND = timedelta(microseconds=1)


class _EventData(msgspec.Struct, gc=False):
    """The `data:` line of a message; msgspec writes it with its keys in this order."""

    topic: str
    event_id: str
    timestamp: datetime
    source: str
    payload: msgspec.Raw


_encode_data = msgspec.json.Encoder().encode


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
    """One event as a stream sends it. On SQLite a tuple made in C from the query's row; items sort in stream order."""

    position: int  # the key (events.stream_cursor): the commit's position,
    timestamp_us: int  # the timestamp,
    pk: int  # the event's id
    message: bytes  # the SSE message, ready to send
    topic: str
    source: str
    payload_text: str

    @property
    def key(self) -> Key:
        return (self.position, self.timestamp_us, self.pk)

    def event(self) -> StoredEvent:
        timestamp = _EPOCH + timedelta(microseconds=self.timestamp_us)
        return StoredEvent(self.topic, timestamp, self.source, self.payload_text)


class StreamsRead(NamedTuple):
    """What read_for_streams() read: events to test, by topic; messages joined, by pattern; and what it cost."""

    items: dict[str, list[StreamItem]]
    messages: dict[str, bytes]
    size: int  # events held: each item, and each event of each joined pattern
    queries: int


def read_for_streams(
    commits: list[Commit], tested_topics: set[str], joined_topics: Mapping[str, list[str]]
) -> StreamsRead:
    """What the streams of a process want of `commits`, read once for all of them.

    The events of `tested_topics`, to test one by one; and for each pattern in
    `joined_topics` (its text: the topics it matches) the messages of its
    topics' events, joined in stream order (b"" when it has none).
    """
    if connection.vendor == "postgresql":
        wanted = tested_topics.union(*joined_topics.values())
        by_topic = read_items(commits, wanted)
        items = {topic: topic_items for topic, topic_items in by_topic.items() if topic in tested_topics}
        messages, size = {}, sum(map(len, items.values()))
        for text, topics in joined_topics.items():
            of_pattern = [by_topic[topic] for topic in topics if topic in by_topic]
            messages[text] = b"".join(item.message for item in heapq.merge(*of_pattern))
            size += sum(map(len, of_pattern))
        return StreamsRead(items, messages, size, queries=int(bool(wanted)))
    items = read_items(commits, tested_topics)
    messages, size = {}, sum(map(len, items.values()))
    for text, topics in joined_topics.items():
        messages[text], count = _sqlite_messages(commits, topics)
        size += count
    queries = bool(tested_topics) + sum(1 for topics in joined_topics.values() if topics)
    return StreamsRead(items, messages, size, queries)


def read_items(commits: Iterable[Commit], topics: Iterable[str]) -> dict[str, list[StreamItem]]:
    """The events `commits` stored under `topics` as SSE messages, by topic, each list in stream order."""
    matching = _matching(commits, topics)
    if matching is None:
        return {}
    condition, params = matching
    if connection.vendor == "postgresql":
        # In stream order, then by topic: sorting by topic text costs the
        # server a collation's comparisons, grouping here a dict lookup.
        by_topic = defaultdict(list)
        for item in _built_items(_postgresql_rows(condition, params)):
            by_topic[item.topic].append(item)
        return dict(by_topic)
    with connection.cursor() as cursor:
        cursor.execute(f"{_sqlite_items(condition)} ORDER BY topic, position, timestamp_us, pk", params)
        items = map(StreamItem._make, cursor.fetchall())
    return {topic: list(topic_items) for topic, topic_items in groupby(items, key=attrgetter("topic"))}


def _sqlite_messages(commits: Iterable[Commit], topics: Iterable[str]) -> tuple[bytes, int]:
    """The SSE messages of the events `commits` stored under `topics`, joined in stream order, and how many."""
    matching = _matching(commits, topics)
    if matching is None:
        return b"", 0
    condition, params = matching
    # SQLite joins in the order its input yields rows. Only the keys are
    # sorted, and each message is built from its row in that order: sorting
    # the built messages cost a fifth of the read more.
    keys = (
        f"SELECT stored.position AS position, {_SQLITE_TIMESTAMP_US} AS timestamp_us, event.id AS pk"
        f" {_from()} WHERE {condition} ORDER BY position, timestamp_us, pk"
    )
    sql = (
        f"SELECT CAST(group_concat({_SQLITE_MESSAGE}, '') AS BLOB), count(*)"
        f" FROM ({keys}) AS ordered JOIN {_table(Event)} AS event ON event.id = ordered.pk"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        messages, count = cursor.fetchone()
    return bytes(messages or b""), count


def _matching(commits: Iterable[Commit], topics: Iterable[str]) -> tuple[str, list] | None:
    """The condition on _from()'s rows for the events `commits` stored under `topics`; None if none can match."""
    topics = set(topics)
    # Only the commits that stored any of the topics (each commit lists its topics).
    commit_ids = [commit.id for commit in commits if not topics.isdisjoint(commit.topics)]
    if not commit_ids:
        return None
    condition = (
        f"event.store_commit_id IN ({', '.join(['%s'] * len(commit_ids))})"
        f" AND event.topic IN ({', '.join(['%s'] * len(topics))})"
    )
    return condition, [*commit_ids, *topics]


def _sqlite_items(condition: str) -> str:
    """A query of StreamItem's columns, the message built by SQLite."""
    return (
        f"SELECT position, timestamp_us, pk, CAST({_SQLITE_MESSAGE} AS BLOB) AS message, topic, source,"
        " payload AS payload_text FROM ("
        f"SELECT stored.position AS position, {_SQLITE_TIMESTAMP_US} AS timestamp_us, event.id AS pk,"
        f" topic, event_id, timestamp, source, payload {_from()} WHERE {condition}) AS events"
    )


def _postgresql_rows(condition: str, params: list) -> list[tuple]:
    """The columns _built_items() takes, in stream order, in binary."""
    sql = (
        "SELECT topic, stored.position, event.timestamp, event.id, event_id::text, source, payload::text"
        f" {_from()} WHERE {condition} ORDER BY stored.position, event.timestamp, event.id"
    )
    connection.ensure_connection()
    # Django's cursors bind parameters on the client, which allows only text
    # results; this one binds them on the server. Wrapped as Django wraps its
    # own, so the query is logged and counted like any other.
    raw = psycopg.Cursor(connection.connection)
    raw.format = psycopg.pq.Format.BINARY
    with connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _built_items(rows: Iterable[tuple]) -> Iterator[StreamItem]:
    """StreamItems of _postgresql_rows()'s rows, each message built by msgspec."""
    for topic, position, timestamp, pk, event_id, source, payload_text in rows:
        timestamp_us = (timestamp - _EPOCH) // _MICROSECOND
        data = _encode_data(_EventData(topic, event_id, timestamp, source, msgspec.Raw(payload_text.encode())))
        message = b"id: %d-%d-%d\nevent: event\ndata: %b\n\n" % (position, timestamp_us, pk, data)
        yield StreamItem(position, timestamp_us, pk, message, topic, source, payload_text)


def _from() -> str:
    return f"FROM {_table(Event)} AS event JOIN {_table(StoreCommit)} AS stored ON stored.id = event.store_commit_id"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)
