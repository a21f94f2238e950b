"""The live tail's cursor: where a stream is in the order events were stored.

A stream sends the events of each store transaction (events.commit_log) in
commit order, and within one transaction in GET /events order: (timestamp,
id). So a position is the key (commit position, timestamp in microseconds,
event id), and the `id:` of each SSE message is that key as text:
`1234-1764590400000000-987`. `1234` alone means "all of commit 1234 and
before": where a stream that is up to date stands between events.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from rest_framework.exceptions import ValidationError

# Sorts after every (timestamp, id) of a commit.
END = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CURSOR = re.compile(r"(\d{1,19})(?:-(-?\d{1,19})-(\d{1,19}))?")

Key = tuple[int, int, int]


def event_key(position: int, timestamp: datetime, event_pk: int) -> Key:
    return (position, (timestamp - _EPOCH) // _MICROSECOND, event_pk)


def after_commit(position: int) -> Key:
    """The key just past every event of the commit at `position` (and of all before it)."""
    return (position, END, END)


def encode(key: Key) -> str:
    position, timestamp_us, event_pk = key
    if timestamp_us == END:
        return str(position)
    return f"{position}-{timestamp_us}-{event_pk}"


def decode(text: str, parameter: str) -> Key:
    """The key of a cursor a stream sent; ValidationError naming `parameter` otherwise."""
    match = _CURSOR.fullmatch(text.strip())
    if match is None:
        raise ValidationError({parameter: "Not a stream cursor: pass the `id:` of the last message as it is."})
    position, timestamp_us, event_pk = match.groups()
    if timestamp_us is None:
        return after_commit(int(position))
    return (int(position), int(timestamp_us), int(event_pk))
