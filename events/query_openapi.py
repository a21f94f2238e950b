"""The OpenAPI description of the GET /events query parameters and of GET /topics' pattern."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter

from events import pagination
from events.validation import SOURCE_MAX_LENGTH, TOPIC_MAX_LENGTH

_PATTERN_RULES = (
    "Dot-separated segments: `*` matches exactly one segment, `>` one or more trailing segments (last only); "
    "any other segment matches itself, so a topic is a pattern that matches only itself."
)
_INSTANT = (
    "An RFC 3339 instant (`2026-05-01T12:00:00Z`; without an offset it is UTC) "
    "or a duration back from now: a whole number and `s`, `m`, `h` or `d` (`90s`, `15m`, `2h`, `7d`)."
)


# A pattern of 1 to 5 segments, the last of which may be `>`.
TOPIC_PATTERN_REGEX = r"^((\*|[A-Za-z0-9_]+)\.){0,4}(\*|>|[A-Za-z0-9_]+)$"
_INSTANT_SCHEMA = {
    "type": "string",
    # Empty is the same as absent (a form's untouched field).
    "anyOf": [{"format": "date-time"}, {"pattern": r"^[0-9]{1,9}[smhd]$"}, {"maxLength": 0}],
}
_TEXT_SCHEMA = {"type": "string", "pattern": "^[^\\u0000]*$"}

PARAMETER_ERROR = {
    "type": "object",
    "description": "Parameter name: what is wrong with it.",
    "additionalProperties": {"type": "string"},
    "example": {"topic": "`>` may only be the last segment (it is segment 2)."},
}


def _examples(**examples: str) -> list[OpenApiExample]:
    return [OpenApiExample(summary, value=value) for summary, value in examples.items()]


TOPIC_PATTERN_PARAMETER = OpenApiParameter(
    "pattern",
    {"type": "string", "minLength": 1, "maxLength": TOPIC_MAX_LENGTH, "pattern": TOPIC_PATTERN_REGEX},
    description=f"{_PATTERN_RULES} Default `>`: every topic.",
    examples=_examples(every_topic=">", one_service="svc1.>", every_region="orders.*.created"),
)

EVENT_QUERY_PARAMETERS = [
    OpenApiParameter(
        "topic",
        {"type": "string", "minLength": 1, "maxLength": TOPIC_MAX_LENGTH, "pattern": TOPIC_PATTERN_REGEX},
        required=True,
        description=f"A topic or a topic pattern. {_PATTERN_RULES}",
        examples=_examples(exact="orders.eu.created", every_region="orders.*.created", below="orders.>", every=">"),
    ),
    OpenApiParameter(
        "since",
        _INSTANT_SCHEMA,
        description=f"Only events at or after this instant. {_INSTANT}",
        examples=_examples(last_hour="1h", instant="2026-05-01T12:00:00Z"),
    ),
    OpenApiParameter(
        "until",
        _INSTANT_SCHEMA,
        description=f"Only events before this instant; not before `since`. {_INSTANT}",
        examples=_examples(fifteen_minutes_ago="15m", instant="2026-05-02T00:00:00Z"),
    ),
    OpenApiParameter(
        "source",
        {"type": "array", "items": {**_TEXT_SCHEMA, "maxLength": SOURCE_MAX_LENGTH}},
        explode=True,
        description="Only events of this source; repeat it for any of several.",
        examples=_examples(one=["svc-a"], either=["svc-a", "svc-b"]),
    ),
    OpenApiParameter(
        "q",
        _TEXT_SCHEMA,
        description=(
            "Only events whose payload (as stored JSON text) or source contains this text, case-insensitively "
            "(ASCII letters on SQLite). A scan of the events the topic and time window select."
        ),
        examples=_examples(word="timeout"),
    ),
    OpenApiParameter(
        "payload.status",
        _TEXT_SCHEMA,
        description=(
            "One of the family `payload.<key>[.<key>…]=<value>`: only events whose payload has this value at "
            "that path, compared as numbers when both are numbers, as text otherwise (true, false and null "
            "match those words). Any path works, several are ANDed; like `q`, a scan of the selected events."
        ),
        examples=_examples(text="failed"),
    ),
    OpenApiParameter(
        "order",
        {"type": "string", "enum": ["asc", "desc"], "default": "asc"},
        description="`asc`: oldest first (ties in processing order), the default; `desc`: newest first.",
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": pagination.MAX_LIMIT},
        description=f"Events per page, 1 to {pagination.MAX_LIMIT} (default {pagination.DEFAULT_LIMIT}).",
    ),
    OpenApiParameter("cursor", str, description="From the `next` URL of the previous page."),
]
