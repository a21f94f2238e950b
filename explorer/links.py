"""Links into the explorer from elsewhere (the admin's event page)."""

from __future__ import annotations

from datetime import UTC, timedelta
from urllib.parse import urlencode

from django.urls import reverse


def explorer_url(event) -> str:
    """The explorer searching exactly this event's instant in its topic, with the event opened."""
    at = event.timestamp.astimezone(UTC)
    query = {
        "topic": event.topic,
        "since": _rfc3339(at),
        "until": _rfc3339(at + timedelta(microseconds=1)),  # `until` is exclusive
        "open": str(event.event_id),
    }
    return f"{reverse('explorer')}?{urlencode(query)}"


def _rfc3339(instant) -> str:
    return instant.isoformat(timespec="microseconds").replace("+00:00", "Z")
