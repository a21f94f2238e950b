"""publisher.generator: exact duplicate counts, real re-sends, reproducible seeds."""

import re
import uuid
from datetime import UTC, datetime

import pytest

from publisher.generator import EventGenerator, Round

TOPIC = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){0,4}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def fixed_clock():
    return datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def key(event):
    return (event["topic"], event["event_id"])


def without_timestamp(event):
    return {name: value for name, value in event.items() if name != "timestamp"}


def sent_round(generator, size, ratio) -> Round:
    """A round whose every event the aggregator accepted."""
    round_ = generator.next_round(size, ratio)
    generator.remember(e for e, dup in zip(round_.events, round_.duplicate) if not dup)
    return round_


@pytest.mark.parametrize(
    ("size", "ratio", "duplicates"),
    [(5000, 0.25, 1250), (1000, 0.2, 200), (7, 0.5, 4), (100, 0.0, 0), (1, 0.0, 0), (10, 0.99, 9)],
)
def test_a_round_has_exactly_round_size_times_ratio_duplicates(size, ratio, duplicates):
    round_ = EventGenerator(topics=8).next_round(size, ratio)
    assert len(round_.events) == len(round_.duplicate) == size
    assert round_.duplicates == duplicates
    assert round_.unique == size - duplicates


def test_the_default_round_is_more_than_twenty_percent_duplicates():
    round_ = EventGenerator(topics=8).next_round(5000, 0.25)
    assert round_.duplicates / len(round_.events) > 0.2


def test_the_flags_match_what_an_aggregator_would_count():
    generator = EventGenerator(topics=3, seed=1)
    seen = set()
    for _ in range(4):
        round_ = sent_round(generator, 2000, 0.3)
        for event, duplicate in zip(round_.events, round_.duplicate):
            assert duplicate == (key(event) in seen)
            seen.add(key(event))


def test_a_first_round_keeps_at_least_one_original():
    round_ = EventGenerator(topics=1).next_round(3, 0.9)
    assert (round_.unique, round_.duplicates) == (1, 2)


def test_a_later_round_may_be_all_duplicates_of_earlier_rounds():
    generator = EventGenerator(topics=2, seed=3)
    sent_round(generator, 10, 0.0)
    round_ = generator.next_round(3, 0.9)
    assert (round_.unique, round_.duplicates) == (0, 3)


def test_a_duplicate_resends_an_earlier_event_with_a_new_later_timestamp():
    generator = EventGenerator(topics=4, seed=7)
    first = sent_round(generator, 500, 0.25)
    second = sent_round(generator, 500, 0.25)
    originals = {}
    for round_ in (first, second):
        for event, duplicate in zip(round_.events, round_.duplicate):
            if not duplicate:
                originals[key(event)] = event
                continue
            original = originals[key(event)]
            assert without_timestamp(event) == without_timestamp(original)
            assert event["timestamp"] > original["timestamp"]


def test_later_rounds_resend_events_from_this_and_earlier_rounds():
    generator = EventGenerator(topics=4, seed=11)
    first = sent_round(generator, 1000, 0.25)
    second = sent_round(generator, 1000, 0.25)
    first_keys = {key(e) for e in first.events}
    resent = [key(e) for e, dup in zip(second.events, second.duplicate) if dup]
    from_earlier = sum(1 for k in resent if k in first_keys)
    assert from_earlier == 125  # half of the 250 duplicates
    assert len(resent) - from_earlier == 125
    new = [key(e) for e, dup in zip(second.events, second.duplicate) if not dup]
    assert not set(new) & first_keys


def test_only_remembered_events_are_resent_in_later_rounds():
    generator = EventGenerator(topics=4, seed=5)
    first = generator.next_round(100, 0.0)
    accepted = first.events[:10]
    generator.remember(accepted)
    second = generator.next_round(1000, 0.5)
    first_keys = {key(e) for e in first.events}
    from_earlier = {key(e) for e, dup in zip(second.events, second.duplicate) if dup} & first_keys
    assert from_earlier
    assert from_earlier <= {key(e) for e in accepted}


def test_the_first_round_only_repeats_its_own_events():
    round_ = EventGenerator(topics=4, seed=2).next_round(1000, 0.4)
    seen = set()
    for event, duplicate in zip(round_.events, round_.duplicate):
        assert duplicate == (key(event) in seen)
        seen.add(key(event))


def test_events_match_the_publish_contract():
    generator = EventGenerator(topics=200, seed=9)
    round_ = generator.next_round(2000, 0.25)
    assert len(set(generator.topics)) == 200
    for event in round_.events:
        assert set(event) == {"topic", "event_id", "timestamp", "source", "payload"}
        assert TOPIC.match(event["topic"])
        assert uuid.UUID(event["event_id"]).version == 4
        assert TIMESTAMP.match(event["timestamp"])
        assert isinstance(event["payload"], dict)
        assert event["source"]


def test_timestamps_grow_in_send_order():
    round_ = EventGenerator(topics=2).next_round(1000, 0.25)
    stamps = [e["timestamp"] for e in round_.events]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


@pytest.mark.parametrize("topics", [1, 8, 120, 121, 500])
def test_it_publishes_to_exactly_the_requested_number_of_topics(topics):
    generator = EventGenerator(topics=topics, seed=1)
    assert len(set(generator.topics)) == topics
    assert {e["topic"] for e in generator.next_round(5000, 0).events} <= set(generator.topics)
    assert all(TOPIC.match(t) for t in generator.topics)


def test_the_same_seed_gives_the_same_rounds():
    def rounds(seed):
        generator = EventGenerator(topics=8, seed=seed, clock=fixed_clock)
        return [sent_round(generator, 300, 0.3) for _ in range(3)]

    assert rounds(42) == rounds(42)
    assert rounds(42) != rounds(43)


def test_without_a_seed_event_ids_differ_between_runs():
    first = EventGenerator(topics=8).next_round(100, 0)
    second = EventGenerator(topics=8).next_round(100, 0)
    assert not {e["event_id"] for e in first.events} & {e["event_id"] for e in second.events}


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_it_rejects_a_ratio_outside_zero_to_one(ratio):
    with pytest.raises(ValueError):
        EventGenerator(topics=1).next_round(10, ratio)


def test_memory_stays_bounded_however_many_events_are_remembered():
    generator = EventGenerator(topics=1, seed=1, history_size=50)
    for _ in range(10):
        sent_round(generator, 100, 0.1)
    assert len(generator._history) == 50
