"""A stand-in for events.query until the query module lands: an exact topic and `since` only.

The live tail imports EventQuery through events.stream_filters, which prefers
events.query; delete this module once that exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from rest_framework.exceptions import ValidationError

from events.validation import TOPIC_RULE, is_valid_topic

_DURATION = re.compile(r"(\d{1,9})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class TopicPattern:
    text: str

    def matches(self, topic: str) -> bool:
        return topic == self.text


@dataclass(frozen=True)
class EventQuery:
    pattern: TopicPattern
    since: datetime | None = None

    @classmethod
    def from_params(cls, params) -> EventQuery:
        topic = params.get("topic")
        if not topic:
            raise ValidationError({"topic": "This query parameter is required."})
        if not is_valid_topic(topic):
            raise ValidationError({"topic": f"Invalid topic: it {TOPIC_RULE}."})
        return cls(TopicPattern(topic), _instant(params.get("since")))

    def matches(self, event) -> bool:
        return self.pattern.matches(event.topic) and (self.since is None or event.timestamp >= self.since)


def _instant(raw: str | None) -> datetime | None:
    if not raw:
        return None
    if duration := _DURATION.fullmatch(raw):
        amount, unit = duration.groups()
        return timezone.now() - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError({"since": f"Not an instant: {raw!r}."}) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
