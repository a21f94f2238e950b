"""Mapped OTLP records pass the /publish checks, or each one that fails is rejected alone.

Fast path: the mapping already guarantees most of the publish contract
(topics made valid or checked, UUIDs, naive UTC timestamps, no key twice,
finite floats, 64-bit integers by protobuf's types, depth within
MAX_PAYLOAD_DEPTH), so only NUL characters and the source's length are left
to check. When either fails, every record goes through
events.validation.parse_events itself, which names the problem; the records
that pass are kept.
"""

from __future__ import annotations

import msgspec

from events.validation import SOURCE_MAX_LENGTH, InvalidEvents, PublishedEvent, parse_events

_encode = msgspec.json.Encoder().encode


def check_events(events: list[dict], places: list[str]) -> tuple[list[PublishedEvent], list[str]]:
    """The events that pass, and a `place: problem` line for each that does not."""
    if (accepted := _all_clean(events)) is not None:
        return accepted, []
    accepted, rejections = [], []
    for event, place in zip(events, places, strict=True):
        try:
            accepted.extend(parse_events(_encode(event), max_events=1))
        except InvalidEvents as exc:
            rejections.append(f"{place}: {exc}")
    return accepted, rejections


def _all_clean(events: list[dict]) -> list[PublishedEvent] | None:
    """Every event as a PublishedEvent when nothing needs a closer look, else None."""
    accepted = []
    for event in events:
        source = event["source"]
        payload = _encode(event["payload"])
        # msgspec writes NUL as \u0000 (a literal backslash as \\: a false alarm, checked exactly).
        if b"\\u0000" in payload or len(source) > SOURCE_MAX_LENGTH or "\x00" in source:
            return None
        accepted.append(
            PublishedEvent(event["topic"], event["event_id"], event["timestamp"], source, msgspec.Raw(payload))
        )
    return accepted
