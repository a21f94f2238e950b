"""What a live stream selects: GET /events's filters, and where the stream starts.

The stream takes the filters of GET /events (topic pattern, source, q,
payload.…) from events.query. Two of its parameters mean something else on a
stream: `since` is where it starts (events stored since that instant, then the
live ones), and a stream has no `until` and only one order: the order in which
events are stored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from rest_framework.exceptions import ValidationError

from events.query import EventQuery


@dataclass(frozen=True)
class StreamFilters:
    query: EventQuery  # every filter but the start
    since: datetime | None  # the start, when given as an instant

    @property
    def pattern(self):
        return self.query.pattern

    @property
    def topic_only(self) -> bool:
        """Whether the topic pattern is the only filter: streams read only its topics' events, so all match."""
        query = self.query
        return not (query.since or query.until or query.sources or query.text or query.payload)


def parse_stream_filters(params) -> StreamFilters:
    """StreamFilters from the request's parameters; ValidationError naming the parameter."""
    if params.get("until"):
        raise ValidationError({"until": "A live stream has no end: leave out `until`."})
    if params.get("order") not in (None, "", "asc"):
        raise ValidationError({"order": "A live stream goes in the order events are stored: leave out `order`."})
    query = EventQuery.from_params(params)
    # `since` starts the stream; as a filter it would drop late arrivals with old timestamps.
    return StreamFilters(query=dataclasses.replace(query, since=None), since=query.since)
