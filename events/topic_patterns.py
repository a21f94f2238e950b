"""Topic patterns with NATS subject semantics, over dot-separated topics.

`*` matches exactly one segment, `>` one or more trailing segments (last
only); any other segment matches itself. A pattern without wildcards is an
exact topic. `orders.*.created` matches `orders.eu.created`; `orders.>`
matches `orders.eu` and `orders.eu.created`, not `orders`; `>` matches all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

from events.validation import TOPIC_MAX_LENGTH

ONE_SEGMENT = "*"
TRAILING_SEGMENTS = ">"
# Topics have at most five segments (events.validation), so a longer pattern
# could never match anything.
MAX_SEGMENTS = 5
_literal_segment = re.compile(r"[A-Za-z0-9_]+").fullmatch


class InvalidTopicPattern(ValueError):
    """The text is not a topic pattern; the message says why."""


@dataclass(frozen=True)
class TopicPattern:
    text: str
    segments: tuple[str, ...]

    @property
    def is_exact(self) -> bool:
        return ONE_SEGMENT not in self.segments and TRAILING_SEGMENTS not in self.segments

    @property
    def matches_every_topic(self) -> bool:
        return self.segments == (TRAILING_SEGMENTS,)

    @property
    def literal_prefix(self) -> tuple[str, ...]:
        """The segments before the first wildcard: every match starts with them."""
        for index, segment in enumerate(self.segments):
            if segment in (ONE_SEGMENT, TRAILING_SEGMENTS):
                return self.segments[:index]
        return self.segments

    def matches(self, topic: str) -> bool:
        if self.is_exact:  # the usual pattern: no need to split the topic
            return topic == self.text
        topic_segments = topic.split(".")
        if self.segments[-1] == TRAILING_SEGMENTS:
            fixed = self.segments[:-1]
            if len(topic_segments) <= len(fixed):
                return False
            topic_segments = topic_segments[: len(fixed)]
        else:
            fixed = self.segments
            if len(topic_segments) != len(fixed):
                return False
        return all(wanted in (ONE_SEGMENT, got) for wanted, got in zip(fixed, topic_segments, strict=True))

    def matching(self, topics: Iterable[str]) -> list[str]:
        return [topic for topic in topics if self.matches(topic)]

    def sql_filter(self) -> Q:
        """The same match as a filter on Event.topic (or any `topic` column).

        A range on the literal prefix lets the topic index narrow the rows;
        the regular expression then checks the wildcard segments.
        """
        if self.is_exact:
            return Q(topic=self.text)
        if self.matches_every_topic:
            return Q()
        condition = Q(topic__regex=self.regex())
        prefix = ".".join(self.literal_prefix)
        if prefix:
            # Every topic that starts with "prefix." sorts in ["prefix.", "prefix/"): "/" follows ".".
            condition &= Q(topic__gte=f"{prefix}.", topic__lt=f"{prefix}/")
        return condition

    def regex(self) -> str:
        parts = []
        for segment in self.segments:
            if segment == ONE_SEGMENT:
                parts.append(r"[^.]+")
            elif segment == TRAILING_SEGMENTS:
                parts.append(r"[^.]+(\.[^.]+)*")
            else:
                parts.append(re.escape(segment))
        return "^" + r"\.".join(parts) + "$"

    def __str__(self):
        return self.text


def parse_pattern(text: str) -> TopicPattern:
    """The pattern `text`, or InvalidTopicPattern saying what is wrong with it."""
    if not text:
        raise InvalidTopicPattern("The topic pattern is empty.")
    if len(text) > TOPIC_MAX_LENGTH:
        raise InvalidTopicPattern(f"A topic pattern has at most {TOPIC_MAX_LENGTH} characters.")
    segments = tuple(text.split("."))
    if len(segments) > MAX_SEGMENTS:
        raise InvalidTopicPattern(f"A topic pattern has at most {MAX_SEGMENTS} dot-separated segments, like topics.")
    for position, segment in enumerate(segments, start=1):
        if segment == TRAILING_SEGMENTS:
            if position != len(segments):
                raise InvalidTopicPattern(f"`>` may only be the last segment (it is segment {position}).")
        elif segment != ONE_SEGMENT and not _literal_segment(segment):
            if not segment:
                raise InvalidTopicPattern(f"Segment {position} is empty: no leading, trailing or double dots.")
            raise InvalidTopicPattern(
                f"Segment {position} ({segment!r}) must be `*`, `>` or letters, digits and underscores only; "
                "a wildcard is a whole segment."
            )
    return TopicPattern(text, segments)
