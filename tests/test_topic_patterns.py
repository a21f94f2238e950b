"""Topic patterns: NATS semantics, malformed patterns, and the SQL filter agreeing with the Python match."""

import pytest

from events.models import Stats
from events.topic_patterns import InvalidTopicPattern, parse_pattern

TOPICS = [
    "orders",
    "orders.eu",
    "orders.us",
    "orders.eu.created",
    "orders.us.created",
    "orders.eu.x.created",
    "orders.eu.created.late",
    "ordersx.eu.created",
    "svc1.a",
    "svc1.a.b.c.d",
    "a.b.c.d.e",
    "x",
]


@pytest.mark.parametrize(
    "pattern, matched",
    [
        ("orders.*.created", {"orders.eu.created", "orders.us.created"}),
        ("orders.>", {topic for topic in TOPICS if topic.startswith("orders.")}),
        (">", set(TOPICS)),
        ("*", {"orders", "x"}),
        ("*.*", {"orders.eu", "orders.us", "svc1.a"}),
        ("orders", {"orders"}),
        ("orders.eu.created", {"orders.eu.created"}),
        ("*.eu.>", {"orders.eu.created", "orders.eu.x.created", "orders.eu.created.late", "ordersx.eu.created"}),
        ("a.b.c.d.e", {"a.b.c.d.e"}),
        ("*.*.*.*.*", {"svc1.a.b.c.d", "a.b.c.d.e"}),
        ("svc1.a.>", {"svc1.a.b.c.d"}),
        ("*.>", set(TOPICS) - {"orders", "x"}),
        ("nothing.>", set()),
    ],
)
def test_a_pattern_matches_exactly_the_topics_nats_would(pattern, matched):
    assert set(parse_pattern(pattern).matching(TOPICS)) == matched


@pytest.mark.django_db
@pytest.mark.parametrize("pattern", ["orders.*.created", "orders.>", ">", "*", "*.*", "orders", "*.eu.>", "*.*.*.*.*"])
def test_the_sql_filter_selects_what_the_python_match_does(pattern):
    Stats.objects.bulk_create(Stats(topic=topic) for topic in TOPICS)
    parsed = parse_pattern(pattern)
    selected = set(Stats.objects.filter(parsed.sql_filter()).values_list("topic", flat=True))
    assert selected == set(parsed.matching(TOPICS))


def test_exact_topics_and_every_topic_are_recognised():
    assert parse_pattern("orders.eu").is_exact
    assert not parse_pattern("orders.*").is_exact
    assert parse_pattern(">").matches_every_topic
    assert parse_pattern("orders.*.x.>").literal_prefix == ("orders",)


@pytest.mark.parametrize(
    "pattern, complaint",
    [
        ("orders.>.x", "`>` may only be the last segment"),
        (">.x", "`>` may only be the last segment"),
        ("or*ders", "a wildcard is a whole segment"),
        ("orders.e>", "a wildcard is a whole segment"),
        ("orders..x", "Segment 2 is empty"),
        (".orders", "Segment 1 is empty"),
        ("orders.", "Segment 2 is empty"),
        ("", "empty"),
        ("a.b.c.d.e.>", "at most 5"),
        ("a-b", "letters, digits and underscores"),
        ("a" * 256, "at most 255 characters"),
    ],
)
def test_a_malformed_pattern_says_what_is_wrong(pattern, complaint):
    with pytest.raises(InvalidTopicPattern, match=complaint.replace("*", r"\*")):
        parse_pattern(pattern)
