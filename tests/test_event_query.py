"""GET /events as a query: every filter, both orders, cursor walks, all against a brute-force filter.

The brute force is written here independently of events.query: Python over
every stored event. A walk follows `next` until it ends and must return
exactly the brute force's events in its order; EventQuery.matches() must
agree with both.
"""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from events import query
from events.models import Event
from events.query import EventQuery, with_payload_text
from tests.factories import event

T0 = datetime(2026, 3, 1, tzinfo=UTC)
# Most events in one topic, so that patterns without it select rare topics
# (read one index each and merged) and patterns with it a large share (read
# from the timeline): both ways of reading a page are walked.
BULK_TOPIC = "bulk.stream"
TOPICS = ["orders.eu.created", "orders.us.created", "orders.eu.x.created", "orders", "svc1.a", "a.b.c.d.e"]
SOURCES = ["svc-a", "svc-b", "svc-c"]
STATUSES = ["failed", "ok", 42, 42.5, True, None, "FAILED"]


def _stamp(index: int) -> str:
    # Few distinct instants, so that pages split inside ties.
    return (T0 + timedelta(minutes=index % 17)).isoformat().replace("+00:00", "Z")


def _corpus() -> list[dict]:
    published = []
    for index in range(150):
        topic = BULK_TOPIC if index % 3 else TOPICS[(index // 3) % len(TOPICS)]
        payload = {"status": STATUSES[index % len(STATUSES)], "order": {"region": "eu" if index % 2 else "us"}}
        if index % 11 == 0:
            payload["note"] = "Rare Needle 100%_done"
        published.append(event(topic, timestamp=_stamp(index), source=SOURCES[(index // 2) % 3], payload=payload))
    return published


@pytest.fixture
def stored(publish, drain):
    published = _corpus()
    # Several requests, so that processing order differs from timestamp order.
    for start in range(0, len(published), 40):
        assert publish(published[start : start + 40]).status_code == 202
    drain()
    return published


def brute_topic_match(pattern: str, topic: str) -> bool:
    wanted, got = pattern.split("."), topic.split(".")
    if wanted[-1] == ">":
        return len(got) >= len(wanted) and all(w in ("*", g) for w, g in zip(wanted[:-1], got))
    return len(got) == len(wanted) and all(w in ("*", g) for w, g in zip(wanted, got))


def brute_payload_match(payload, path: str, value: str) -> bool:
    for key in path.split("."):
        if not isinstance(payload, dict) or key not in payload:
            return False
        payload = payload[key]
    if isinstance(payload, bool):
        return value == str(payload).lower()
    if payload is None:
        return value == "null"
    if isinstance(payload, int | float):
        try:
            return float(value) == payload
        except ValueError:
            return False
    return payload == value


def brute_force(params: dict) -> list[str]:
    """The event ids GET /events must list for `params`, in order, by looking at every stored event."""
    since = datetime.fromisoformat(params["since"]) if "since" in params else None
    until = datetime.fromisoformat(params["until"]) if "until" in params else None
    sources = params.get("source")
    selected = []
    for stored in with_payload_text(Event.objects.all()):
        if not brute_topic_match(params["topic"], stored.topic):
            continue
        if (since and stored.timestamp < since) or (until and stored.timestamp >= until):
            continue
        if sources and stored.source not in sources:
            continue
        if "q" in params:
            needle = params["q"].lower()
            if needle not in stored.payload_text.lower() and needle not in stored.source.lower():
                continue
        if any(
            not brute_payload_match(stored.payload, name.removeprefix("payload."), value)
            for name, value in params.items()
            if name.startswith("payload.")
        ):
            continue
        selected.append(stored)
    selected.sort(key=lambda stored: (stored.timestamp, stored.id), reverse=params.get("order") == "desc")
    return [str(stored.event_id) for stored in selected]


def walk(api, params: dict, limit: int) -> list[str]:
    seen, url = [], None
    response = api.get("/events", {**params, "limit": limit})
    while True:
        assert response.status_code == 200, response.json()
        page = response.json()
        assert len(page["events"]) <= limit
        seen += [item["event_id"] for item in page["events"]]
        url = page["next"]
        if not url:
            return seen
        response = api.get(url)


PATTERNS = ["orders.*.created", "orders.>", ">", "*.*", BULK_TOPIC, "*.stream", "a.b.c.d.e", "nothing.here"]
WINDOWS = [{}, {"since": _stamp(3)[:-1] + "+00:00", "until": _stamp(12)[:-1] + "+00:00"}]
SOURCE_FILTERS = [{}, {"source": ["svc-a", "svc-c"]}]
TEXT_FILTERS = [{}, {"q": "needle 100%_"}]
PAYLOAD_FILTERS = [{}, {"payload.status": "failed"}, {"payload.status": "42", "payload.order.region": "eu"}]
ORDERS = [{}, {"order": "desc"}]
COMBINATIONS = [
    {"topic": pattern, **window, **source, **text, **payload, **order}
    for pattern, window, source, text, payload, order in itertools.product(
        PATTERNS, WINDOWS, SOURCE_FILTERS, TEXT_FILTERS, PAYLOAD_FILTERS, ORDERS
    )
]


@pytest.mark.django_db
def test_every_combination_of_filters_walks_to_the_brute_force_result(api, stored):
    nonempty = 0
    for params in COMBINATIONS:
        expected = brute_force(params)
        assert walk(api, params, limit=7) == expected, params
        nonempty += bool(expected)
    assert nonempty > len(COMBINATIONS) // 3  # the filters are not vacuous


@pytest.mark.django_db
@pytest.mark.parametrize("params", COMBINATIONS[::5], ids=str)
def test_matches_agrees_with_the_sql(stored, params):
    event_query = EventQuery.from_params(params)
    in_sql = set(event_query.filter(Event.objects.all()).values_list("id", flat=True))
    in_python = {stored.id for stored in with_payload_text(Event.objects.all()) if event_query.matches(stored)}
    assert in_python == in_sql


@pytest.mark.django_db
def test_both_ways_of_reading_a_pattern_are_walked(stored, monkeypatch):
    # With no topic merged, every pattern reads the timeline: same results.
    merged = {str(params): walk_ids(params) for params in COMBINATIONS[:: len(PAYLOAD_FILTERS)]}
    monkeypatch.setattr(query, "MAX_MERGED_TOPICS", 0)
    assert {str(params): walk_ids(params) for params in COMBINATIONS[:: len(PAYLOAD_FILTERS)]} == merged


def walk_ids(params: dict, limit: int = 9) -> list[int]:
    event_query, cursor, seen = EventQuery.from_params(params), None, []
    while True:
        events, cursor = event_query.page(cursor, limit)
        seen += [stored.id for stored in events]
        if len(events) < limit:
            return seen


@pytest.mark.django_db
def test_a_walk_while_events_keep_arriving_never_repeats_or_skips(api, publish, drain, stored):
    for params in ({"topic": "orders.>"}, {"topic": ">", "order": "desc"}, {"topic": "*.*", "source": "svc-b"}):
        before = brute_force(params)
        seen, response, arrivals = [], api.get("/events", {**params, "limit": 5}), 0
        while True:
            page = response.json()
            seen += [item["event_id"] for item in page["events"]]
            # New events land before, inside and after the walk's position.
            publish([event(topic, timestamp=_stamp(arrivals * 7 + offset)) for offset, topic in enumerate(TOPICS)])
            drain()
            arrivals += 1
            if not page["next"]:
                break
            response = api.get(page["next"])
        after = brute_force(params)
        assert len(seen) == len(set(seen))
        assert set(before) <= set(seen) <= set(after)
        assert seen == [event_id for event_id in after if event_id in set(seen)]  # in order


@pytest.mark.django_db
def test_items_carry_their_topic_and_the_response_the_applied_filters(api, stored):
    page = api.get(
        "/events",
        {"topic": "orders.>", "source": "svc-a", "q": "needle", "payload.status": "failed", "until": "2026-04-01"},
    ).json()
    assert page["filters"] == {
        "topic": "orders.>",
        "order": "asc",
        "until": "2026-04-01T00:00:00+00:00",
        "source": ["svc-a"],
        "q": "needle",
        "payload": {"status": "failed"},
    }
    listed = api.get("/events", {"topic": "orders.>"}).json()["events"]
    assert {item["topic"] for item in listed} == {"orders.eu.created", "orders.us.created", "orders.eu.x.created"}


@pytest.mark.django_db
def test_a_relative_window_is_fixed_for_the_whole_walk(api, publish, drain):
    publish([event("w", timestamp=datetime.now(UTC).isoformat()) for _ in range(3)])
    drain()
    page = api.get("/events", {"topic": "w", "since": "1h", "limit": 2}).json()
    since = datetime.fromisoformat(page["filters"]["since"])
    assert timedelta(minutes=59) < datetime.now(UTC) - since < timedelta(minutes=61)
    assert len(page["events"]) == 2
    following = api.get(page["next"]).json()
    assert following["filters"]["since"] == page["filters"]["since"]
    assert len(following["events"]) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value, matching",
    [
        ("5", {"int", "float", "text5"}),
        ("5.0", {"int", "float"}),
        ("5e0", {"int", "float"}),
        ("05", set()),
        ("true", {"true", "text_true"}),
        ("false", {"false"}),
        ("null", {"null"}),
        ("five", {"five"}),
        ("FIVE", set()),
    ],
)
def test_payload_values_compare_as_numbers_when_both_are_numbers_else_as_text(api, publish, drain, value, matching):
    values = {
        "int": 5,
        "float": 5.0,
        "text5": "5",
        "true": True,
        "text_true": "true",
        "false": False,
        "null": None,
        "five": "five",
        "object": {"v": 5},
        "array": [5],
    }
    publish([event("p", source=name, payload={"v": stored}) for name, stored in values.items()])
    drain()
    listed = api.get("/events", {"topic": "p", "payload.v": value}).json()["events"]
    assert {item["source"] for item in listed} == matching


@pytest.mark.django_db
def test_a_payload_path_goes_into_objects_only(api, publish, drain):
    publish([event("p", source="nested", payload={"a": {"0": "x"}}), event("p", source="array", payload={"a": ["x"]})])
    drain()
    listed = api.get("/events", {"topic": "p", "payload.a.0": "x"}).json()["events"]
    assert [item["source"] for item in listed] == ["nested"]


@pytest.mark.django_db
def test_q_is_a_case_insensitive_substring_of_payload_or_source_with_no_wildcards(api, publish, drain):
    publish(
        [
            event("t", source="billing-EU", payload={"n": 1}),
            event("t", payload={"msg": "Disk FULL at 100%"}),
            event("t", payload={"msg": "disk full at 1000"}),
        ]
    )
    drain()

    def sources_and_messages(text):
        listed = api.get("/events", {"topic": "t", "q": text}).json()["events"]
        return [item["payload"].get("msg", item["source"]) for item in listed]

    assert sources_and_messages("Billing-eu") == ["billing-EU"]
    assert sources_and_messages("full at 100") == ["Disk FULL at 100%", "disk full at 1000"]
    assert sources_and_messages("100%") == ["Disk FULL at 100%"]
    assert sources_and_messages("disk_full") == []


@pytest.mark.django_db
def test_topics_lists_the_known_topics_a_pattern_matches_with_their_counters(api, publish, drain):
    publish([event("orders.eu.created"), event("orders.us.created"), event("svc1.a")])
    duplicate = event("orders.eu.created")
    publish([duplicate, duplicate])
    drain()
    response = api.get("/topics", {"pattern": "orders.*.created"})
    assert response.json() == {
        "pattern": "orders.*.created",
        "topics": [
            {"topic": "orders.eu.created", "received": 3, "unique_processed": 2, "duplicate_dropped": 1},
            {"topic": "orders.us.created", "received": 1, "unique_processed": 1, "duplicate_dropped": 0},
        ],
    }
    assert [item["topic"] for item in api.get("/topics").json()["topics"]] == [
        "orders.eu.created",
        "orders.us.created",
        "svc1.a",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"pattern": "orders.>.x"}, "pattern"),
        ({"pattern": ""}, "pattern"),
        ({"pattern": ">", "topic": "x"}, "topic"),
    ],
)
def test_topics_refuses_bad_parameters(api, params, parameter):
    response = api.get("/topics", params)
    assert response.status_code == 400
    assert list(response.json()) == [parameter]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"topic": "orders.>.x"}, "topic"),
        ({"topic": "or*ders"}, "topic"),
        ({"topic": "orders..x"}, "topic"),
        ({"topic": ""}, "topic"),
        ({"topic": "a", "order": "sideways"}, "order"),
        ({"topic": "a", "since": "yesterday"}, "since"),
        ({"topic": "a", "since": "2026-13-01T00:00:00Z"}, "since"),
        ({"topic": "a", "since": "5w"}, "since"),
        ({"topic": "a", "until": "-5m"}, "until"),
        ({"topic": "a", "since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "until"),
        ({"topic": "a", "since": "1h", "until": "2h"}, "until"),
        ({"topic": "a", "payload.": "x"}, "payload."),
        ({"topic": "a", "payload..status": "x"}, "payload..status"),
        ({"topic": "a", 'payload.a"b': "x"}, 'payload.a"b'),
        ({"topic": "a", "payload.status": ["a", "b"]}, "payload.status"),
        ({"topic": "a", "limit": "0"}, "limit"),
        ({"topic": "a", "limit": "10001"}, "limit"),
        ({"topic": "a", "sorce": "svc-a"}, "sorce"),
        ({"topic": "a", "q": "nul\x00"}, "q"),
        ({"topic": "a", "source": "x" * 256}, "source"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(api, params, parameter):
    response = api.get("/events", params)
    assert response.status_code == 400
    assert list(response.json()) == [parameter]


@pytest.mark.django_db
def test_a_duration_too_long_to_count_back_means_from_the_beginning(api, publish, drain):
    publish([event("old", timestamp="0001-01-02T00:00:00Z")])
    drain()
    assert len(api.get("/events", {"topic": "old", "since": "999999999d"}).json()["events"]) == 1


def test_instants_take_offsets_and_naive_ones_are_utc():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert query.parse_instant("since", "2026-05-01T14:00:00+02:00", now=now) == now
    assert query.parse_instant("since", "2026-05-01T12:00:00", now=now) == now
    assert query.parse_instant("since", "90s", now=now) == now - timedelta(seconds=90)
    assert query.parse_instant("since", "7d", now=now) == now - timedelta(days=7)
