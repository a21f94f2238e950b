"""Mapped OTLP records go through the /publish checks; each record that fails is rejected alone.

The whole export is validated in one events.validation.parse_events call (the
/publish fast path). Only when that fails is each record checked on its own,
so the others are kept and every failure is reported with its record.
"""

from __future__ import annotations

import msgspec

from events.validation import InvalidEvents, PublishedEvent, parse_events

_encode = msgspec.json.Encoder().encode


def check_events(events: list[dict], places: list[str]) -> tuple[list[PublishedEvent], list[str]]:
    """The events that pass, and a `place: problem` line for each that does not."""
    if not events:
        return [], []
    try:
        return parse_events(_encode(events), max_events=len(events)), []
    except InvalidEvents:
        pass
    accepted, rejections = [], []
    for event, place in zip(events, places, strict=True):
        try:
            accepted.extend(parse_events(_encode(event), max_events=1))
        except InvalidEvents as exc:
            rejections.append(f"{place}: {exc}")
    return accepted, rejections
