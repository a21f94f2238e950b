"""Keyset pagination over the event timeline: (timestamp, id), ascending or descending.

The cursor names the last event of the previous page, so every page is one
index range scan, as fast at a million events as at the first thousand, and
events stored meanwhile are neither repeated nor skipped: the next page
starts strictly after the last event seen, in the same order.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
INVALID_CURSOR = "Invalid cursor: pass the `next` URL of a previous page as it is."


@dataclass(frozen=True)
class Position:
    """Where an event sits on the timeline."""

    timestamp: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.timestamp.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            timestamp, _, event_pk = raw.partition("|")
            position = cls(datetime.fromisoformat(timestamp), int(event_pk))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValidationError({"cursor": INVALID_CURSOR}) from None
        if position.timestamp.tzinfo is None:
            raise ValidationError({"cursor": INVALID_CURSOR})
        return position

    @classmethod
    def of(cls, event) -> Position:
        return cls(event.timestamp, event.id)


def encode_cursor(event) -> str:
    """The cursor that continues after `event` (an Event, or anything with timestamp and id)."""
    return Position.of(event).encode()


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; ValidationError({"cursor": ...}) when it is not one."""
    return Position.decode(cursor)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"Must be a whole number from 1 to {MAX_LIMIT}."})
    return limit


def ordering(*, descending: bool) -> tuple[str, str]:
    return ("-timestamp", "-id") if descending else ("timestamp", "id")


def after(position: Position | None, *, descending: bool) -> Q:
    """The events after `position` in timeline order (before it on the clock when descending)."""
    if position is None:
        return Q()
    # A range on the index from the timestamp on, minus the few ties already seen.
    if descending:
        return Q(timestamp__lte=position.timestamp) & ~Q(timestamp=position.timestamp, id__gte=position.id)
    return Q(timestamp__gte=position.timestamp) & ~Q(timestamp=position.timestamp, id__lte=position.id)


def keyset_page(queryset: QuerySet, position: Position | None, limit: int, *, descending: bool) -> QuerySet:
    """The next `limit` events of `queryset` after `position`: one index range scan."""
    return queryset.filter(after(position, descending=descending)).order_by(*ordering(descending=descending))[:limit]
