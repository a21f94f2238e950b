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
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import attrgetter
from typing import NamedTuple

from django.db import connection

from events.commit_log import Commit
from events.models import Event, StoreCommit
from events.stream_cursor import Key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Dialect(NamedTuple):
    timestamp_us: str  # the timestamp in microseconds since the epoch, an exact integer
    data: str  # the event's JSON, as text
    payload: str  # the payload's JSON text
    to_bytes: str  # text to bytes, so Python receives the message ready to send


# Stored timestamps are naive UTC text on SQLite ("2026-11-26 12:00:00[.123456]"),
# timestamptz on PostgreSQL. `%%` is a literal `%` once parameters are bound.
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
_SQLITE = _Dialect(
    # The whole seconds, then the six digits after the point ('' when there are none: 0).
    timestamp_us="unixepoch(substr(timestamp, 1, 19)) * 1000000 + CAST(substr(timestamp, 21) AS INTEGER)",
    data=f"printf('{_SQLITE_DATA_FORMAT}', {_SQLITE_DATA_VALUES})",
    payload="payload",
    to_bytes="CAST({} AS BLOB)",
)
# A whole message (see _message) of a row with the columns position, timestamp_us and pk, in one printf.
_SQLITE_MESSAGE = (
    f"printf('id: %%d-%%d-%%d\nevent: event\ndata: {_SQLITE_DATA_FORMAT}\n\n',"
    f" position, timestamp_us, pk, {_SQLITE_DATA_VALUES})"
)
_POSTGRESQL = _Dialect(
    timestamp_us="(EXTRACT(EPOCH FROM timestamp) * 1000000)::bigint",
    data="""'{"topic":' || to_json(topic)::text || ',"event_id":"' || event_id::text || '","timestamp":"'"""
    # One to_char with the fraction, dropped when it is all zeros: a third cheaper than testing it first.
    """ || replace(to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')"""
    """ || 'Z","source":' || to_json(source)::text || ',"payload":' || payload::text || '}'""",
    payload="payload::text",
    to_bytes="convert_to({}, 'UTF8')",
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
    """One event as a stream sends it. A tuple made in C from the query's row; items sort in stream order."""

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


def read_items(commits: Iterable[Commit], topics: Iterable[str]) -> dict[str, list[StreamItem]]:
    """The events `commits` stored under `topics` as SSE messages, by topic, each list in stream order."""
    selected = _select(commits, topics)
    if selected is None:
        return {}
    sql, params = selected
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ORDER BY topic, position, timestamp_us, pk", params)
        items = map(StreamItem._make, cursor.fetchall())
        return {topic: list(topic_items) for topic, topic_items in groupby(items, key=attrgetter("topic"))}


def read_messages(commits: Iterable[Commit], topics: Iterable[str]) -> tuple[bytes, int]:
    """The SSE messages of the events `commits` stored under `topics`, joined in stream order, and how many.

    What a stream whose only filter is its topic pattern sends: the database
    joins the messages, so Python handles one value per read, not one per event.
    """
    matching = _matching(commits, topics)
    if matching is None:
        return b"", 0
    condition, params = matching
    if connection.vendor == "postgresql":
        sql = (
            "SELECT string_agg(message, ''::bytea ORDER BY position, timestamp_us, pk), count(*)"
            f" FROM ({_items_query(_POSTGRESQL, condition)}) AS events"
        )
    else:
        # SQLite joins in the order its input yields rows. Only the keys are
        # sorted, and each message is built from its row in that order:
        # sorting the built messages cost a fifth of the read more.
        keys = (
            f"SELECT stored.position AS position, {_SQLITE.timestamp_us} AS timestamp_us, event.id AS pk"
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


def _select(commits: Iterable[Commit], topics: Iterable[str]) -> tuple[str, list] | None:
    """A query of StreamItem's columns for the events `commits` stored under `topics`; None if none can match."""
    matching = _matching(commits, topics)
    if matching is None:
        return None
    condition, params = matching
    return _items_query(_POSTGRESQL if connection.vendor == "postgresql" else _SQLITE, condition), params


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


def _items_query(dialect: _Dialect, condition: str) -> str:
    return (
        f"SELECT position, timestamp_us, pk, {dialect.to_bytes.format(_message('data'))} AS message,"
        " topic, source, payload_text FROM ("
        f"SELECT stored.position AS position, {dialect.timestamp_us} AS timestamp_us, event.id AS pk,"
        f" {dialect.data} AS data, topic, source, {dialect.payload} AS payload_text {_from()} WHERE {condition}"
        ") AS events"
    )


def _message(data: str) -> str:
    """The SSE message (text) of a row with the columns position, timestamp_us and pk (its cursor), and `data`."""
    cursor_text = "position || '-' || timestamp_us || '-' || pk"
    return f"'id: ' || {cursor_text} || '\nevent: event\ndata: ' || {data} || '\n\n'"


def _from() -> str:
    return f"FROM {_table(Event)} AS event JOIN {_table(StoreCommit)} AS stored ON stored.id = event.store_commit_id"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)
