r"""The body of a GET /events page, encoded straight from the database rows.

Each payload goes into the body as the JSON text the database stores
(msgspec.Raw), never decoded: building an Event and a dict per row, decoding
its payload and encoding it all again with DRF's JSON renderer cost several
times what the query does, so a page of 100 events cost many times a page of
a few. The body has the shape EventPageSerializer documents and DRF's
JSONRenderer would give it (compact, UTF-8, instants as ISO 8601 with `Z`);
a payload may keep the escapes it was stored with (`\u00e9` for `é`), the
same JSON value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import msgspec
from django.db import connection

from events.models import Event
from events.pagination import Position
from events.query import ROW_COLUMNS


class EventItem(msgspec.Struct):
    """One event of a page, in the order of its fields in the response."""

    topic: str
    event_id: UUID
    timestamp: datetime
    source: str
    payload: msgspec.Raw


_encoder = msgspec.json.Encoder()


def items(rows: list[tuple]) -> list[EventItem]:
    """The page's events from EventQuery.page_rows() rows."""
    to_instant, to_uuid = _converter("timestamp"), _converter("event_id")
    return [
        EventItem(topic, to_uuid(event_id), to_instant(timestamp), source, msgspec.Raw(payload_text))
        for _, topic, event_id, timestamp, source, payload_text in rows
    ]


def position(row: tuple) -> Position:
    """Where the event of a page_rows() row sits on the timeline: the cursor after it."""
    values = dict(zip(ROW_COLUMNS, row, strict=True))
    return Position(_converter("timestamp")(values["timestamp"]), values["id"])


def render(page: dict) -> bytes:
    """The page as JSON, as DRF's JSONRenderer would write it."""
    # format() drops the whitespace stored payloads may hold (a compact body,
    # as DRF writes it) and, parsing the whole body, fails loudly rather than
    # send malformed JSON if a stored payload were not JSON.
    body = msgspec.json.format(_encoder.encode(page), indent=-1)
    # As DRF does: these line separators are valid JSON but not JavaScript.
    return body.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")


def _converter(name: str) -> Callable:
    """Django's own conversion of a column's database value (what a queryset applies), for this database."""
    field = Event._meta.get_field(name)
    expression = field.get_col(Event._meta.db_table)
    converters = [*connection.ops.get_db_converters(expression), *field.get_db_converters(connection)]

    def convert(value):
        for converter in converters:
            value = converter(value, expression, connection)
        return value

    return convert
