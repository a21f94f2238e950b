"""Keyset pagination over one topic's timeline: (timestamp, id) ascending.

The cursor names the last event of the previous page, so every page is one
index range scan, as fast at a million events as at the first thousand.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.utils.urls import replace_query_param

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
INVALID_CURSOR = "Invalid cursor: pass the `next` URL of a previous page as it is."


@dataclass(frozen=True)
class Position:
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


def after(queryset: QuerySet, position: Position | None) -> QuerySet:
    """The events after `position` in (timestamp, id) order."""
    if position is None:
        return queryset
    # A range on the index from the timestamp on, minus the few ties already seen.
    return queryset.filter(timestamp__gte=position.timestamp).exclude(timestamp=position.timestamp, id__lte=position.id)


def next_url(request, last: Position | None) -> str | None:
    if last is None:
        return None
    return replace_query_param(request.build_absolute_uri(), "cursor", last.encode())
