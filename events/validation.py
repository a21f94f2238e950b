"""The publish contract: decode and validate a POST /publish body in one pass.

msgspec decodes and checks the whole body in C (a 5,000-event batch in a few
milliseconds); per-item DRF serializers would cost twenty times more on the hot
path. DRF still owns the view, the errors and the schema (events.openapi).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from itertools import chain, compress, repeat
from operator import is_
from typing import Annotated

import msgspec

TOPIC_PATTERN = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){0,4}$"
TOPIC_MAX_LENGTH = 255
TOPIC_RULE = "must be 1 to 5 dot-separated segments of letters, digits and underscores"
SOURCE_MAX_LENGTH = 255
# Deeper payloads are refused: reading one back (json.loads, the renderers)
# recurses once per level and must stay far from Python's recursion limit.
MAX_PAYLOAD_DEPTH = 64
# Integers must fit a signed or an unsigned 64-bit integer, as most readers
# (PostgreSQL's bigint, JavaScript's BigInt64, Go, Java) can hold them.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1

# msgspec checks `pattern` with re.search, where `$` also matches before a
# trailing newline; a full match closes that gap.
_topic_fullmatch = re.compile(TOPIC_PATTERN.strip("^$")).fullmatch

# NUL cannot be stored in PostgreSQL text or jsonb, so it is refused
# everywhere. JSON can only carry it as the escape "\u0000" (preceded by an
# even number of backslashes, or it is an escaped backslash and literal text).
_escaped_nul = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def is_valid_topic(topic: str) -> bool:
    return len(topic) <= TOPIC_MAX_LENGTH and _topic_fullmatch(topic) is not None


Topic = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=TOPIC_MAX_LENGTH,
        pattern=TOPIC_PATTERN,
        description="Dot-separated name of 1 to 5 segments of letters, digits and underscores.",
        examples=["orders.eu.created"],
    ),
]
Source = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=SOURCE_MAX_LENGTH, description="Who sent the event.", examples=["svc-a"]),
]


# gc=False: the garbage collector never scans these (they hold only strings,
# a UUID, a datetime and bytes, so no cycle), ~2 ms less per 5000-event batch.
class PublishedEvent(msgspec.Struct, gc=False):
    """One event as publishers send it."""

    topic: Topic
    event_id: Annotated[uuid.UUID, msgspec.Meta(description="Any UUID; with the topic, the dedup key.")]
    timestamp: Annotated[
        datetime, msgspec.Meta(description="ISO 8601 / RFC 3339; without an offset it is taken as UTC.")
    ]
    source: Source
    # Kept as the raw JSON text: validated as an object, stored as sent.
    payload: Annotated[msgspec.Raw, msgspec.Meta(description="Any JSON object.")]


_decoder = msgspec.json.Decoder(list[PublishedEvent] | PublishedEvent)
_value_decoder = msgspec.json.Decoder()
_items_decoder = msgspec.json.Decoder(list[msgspec.Raw])


class InvalidEvents(Exception):
    """The body is not a valid publish request; nothing of it may be accepted."""

    def __init__(self, message: str, *, item: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.item = item
        self.field = field

    def __str__(self):
        where = []
        if self.item is not None:
            where.append(f"item {self.item}")
        if self.field:
            where.append(f"field `{self.field}`")
        return f"{', '.join(where)}: {self.message}" if where else self.message


# "Expected `str`, got `int` - at `$[3].topic`" -> message, item 3, field "topic".
_error_location = re.compile(r"^(?P<message>.*?)(?: - at `\$(?:\[(?P<item>\d+)\])?\.?(?P<field>[^`\[]*)[^`]*`)?$", re.S)
# "`payload` must be ..." (__post_init__) or "Object missing required field `topic`".
_field_in_message = re.compile(r"^`(?P<field>\w+)` |required field `(?P<missing>\w+)`")


def parse_events(body: bytes, *, max_events: int) -> list[PublishedEvent]:
    """Decode a publish body (one event or an array of them) or raise InvalidEvents."""
    try:
        decoded = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _describe(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvents(f"Malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidEvents("Malformed JSON: nested too deeply") from None
    events = decoded if isinstance(decoded, list) else [decoded]
    if not events:
        raise InvalidEvents("The batch is empty: send one event or an array of 1 or more events.")
    if len(events) > max_events:
        raise InvalidEvents(f"The batch has {len(events)} events; at most {max_events} are accepted per request.")
    in_batch = isinstance(decoded, list)
    # A newline ending a topic or a NUL can only arrive as a JSON escape; when
    # the body has no backslash at all (one memchr), those checks are skipped.
    has_escapes = b"\\" in body
    for index, event in enumerate(events):
        item = index if in_batch else None
        if memoryview(event.payload)[0] != _OPEN_BRACE:
            raise InvalidEvents("must be a JSON object", item=item, field="payload")
        if has_escapes:
            _check_escapes(event, item=item)
        if event.timestamp.tzinfo is not None:
            _to_naive_utc(event, item=item)
    _check_values(body, batch=in_batch)
    return events


_OPEN_BRACE = ord("{")
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def _check_escapes(event: PublishedEvent, *, item: int | None) -> None:
    """The rules msgspec cannot express about escaped characters."""
    if not _topic_fullmatch(event.topic):
        raise InvalidEvents(TOPIC_RULE, item=item, field="topic")
    if "\x00" in event.source:
        raise InvalidEvents("must not contain NUL characters", item=item, field="source")
    payload = bytes(event.payload)
    if b"\\u0000" in payload and _escaped_nul.search(payload):
        raise InvalidEvents("must not contain NUL characters (\\u0000)", item=item, field="payload")


def _to_naive_utc(event: PublishedEvent, *, item: int | None) -> None:
    # The same instant as astimezone(utc).replace(tzinfo=None), ten times
    # faster: replace() parses its keyword arguments on every call.
    try:
        event.timestamp = _NAIVE_EPOCH + (event.timestamp - _UTC_EPOCH)
    except OverflowError:
        raise InvalidEvents("is out of range once converted to UTC", item=item, field="timestamp") from None


def _check_values(body: bytes, *, batch: bool) -> None:
    """Refuse what the typed decode lets through: duplicate keys, integers beyond 64 bits,
    floats beyond double range, invalid UTF-8 in payload strings, too deep nesting.

    The payload is kept as raw JSON, so the body is decoded once more here.
    Fast path: walk the decoded body for depth and integer range while counting
    the keys it kept, and count the keys in the text: with whitespace removed,
    every `":` ends a key unless the body has a `\\"` followed by `:` (a quote
    inside a string). Equal counts mean no object had a duplicate key. Bodies
    that fail any of this are checked item by item with the exact (slower)
    parser, which names the item and field.
    """
    try:
        document = _value_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass  # located below
    else:
        problem, keys = _value_problem(document, MAX_PAYLOAD_DEPTH + (2 if batch else 1))
        if problem is None:
            text = msgspec.json.format(body, indent=-1)
            if b'\\":' not in text and text.count(b'":') == keys:
                return
    items = _items_decoder.decode(body) if batch else [body]
    for index, item in enumerate(items):
        try:
            _check_item(bytes(item))
        except InvalidEvents as exc:
            exc.item = index if batch else None
            raise


class _DuplicateKey(Exception):
    pass


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        raise _DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return value


def _check_item(item: bytes) -> None:
    try:
        value = _value_decoder.decode(item)
    except msgspec.ValidationError:  # "Number out of range": only the payload holds free-form numbers
        raise InvalidEvents("has a number beyond the range of a 64-bit float", field="payload") from None
    except (UnicodeDecodeError, msgspec.DecodeError):
        raise InvalidEvents("has a string that is not valid UTF-8", field="payload") from None
    except RecursionError:
        raise InvalidEvents(f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep", field="payload") from None
    if problem := _value_problem(value["payload"], MAX_PAYLOAD_DEPTH)[0]:
        raise InvalidEvents(problem, field="payload")
    if problem := _value_problem(value, 1 + MAX_PAYLOAD_DEPTH)[0]:
        raise InvalidEvents(f"The event {problem}")
    try:
        json.loads(item, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        key = exc.args[0]
        try:
            json.loads(_payload_of(item), object_pairs_hook=_refuse_duplicates)
        except _DuplicateKey:
            raise InvalidEvents(f"has the key `{key}` twice in one object", field="payload") from None
        raise InvalidEvents(f"The event has the key `{key}` twice", field=key) from None


def _payload_of(item: bytes) -> bytes:
    return bytes(msgspec.json.decode(item, type=_PayloadOnly).payload)


class _PayloadOnly(msgspec.Struct):
    payload: msgspec.Raw


def _value_problem(value, max_depth: int) -> tuple[str | None, int]:
    """Why a decoded JSON value is refused (too deep, an integer beyond 64 bits), or None;
    and how many object keys it holds."""
    # A level of the tree at a time: chain, map, compress and set run in C,
    # so a whole batch costs a few passes per level, not a few per container.
    level, depth, keys = [value], 1, 0
    while level:
        if depth > max_depth:
            return f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep", keys
        objects = [container.values() for container in level if type(container) is dict]
        keys += sum(map(len, objects))
        arrays = [container for container in level if type(container) is list]
        values = list(chain.from_iterable(objects + arrays))
        kinds = list(map(type, values))
        present = set(kinds)
        if int in present:
            numbers = list(compress(values, map(is_, kinds, repeat(int))))
            if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
                big = next(item for item in numbers if not INT_MIN <= item <= INT_MAX)
                return f"has the integer {big} beyond the signed and unsigned 64-bit range", keys
        if present.isdisjoint(_CONTAINERS):
            break
        level, depth = list(compress(values, map(_CONTAINERS.__contains__, kinds))), depth + 1
    return None, keys


_CONTAINERS = frozenset({dict, list})


def _describe(error: str) -> InvalidEvents:
    match = _error_location.match(error)
    message, item, field = match["message"], match["item"], match["field"] or None
    if field is None and (named := _field_in_message.search(message)):
        field = named["field"] or named["missing"]
        if named["field"]:
            message = message[named.end() :]
    if "matching regex" in message and field == "topic":
        message = TOPIC_RULE
    message = message.replace("Invalid RFC3339 encoded datetime", "Invalid ISO 8601 timestamp")
    return InvalidEvents(message, item=int(item) if item is not None else None, field=field)
