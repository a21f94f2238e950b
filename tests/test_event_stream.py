"""The live tail in-process: what a stream sends, from the buffer and from the store, and its errors.

The streams here are driven step by step (no server, no watcher thread: the
test calls the hub's advance() where the watcher would). tests/
test_event_stream_e2e.py runs them in real servers.
"""

import json
import threading
from datetime import timedelta

import msgspec
import pytest
from django.db import connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from events import commit_log, stream_cursor, stream_hub, stream_views
from events.models import Event, StoreCommit
from events.stream import CATCH_UP, StreamSession
from events.stream_filters import parse_stream_filters
from events.stream_hub import StreamHub, ThreadWaker
from publisher.stream_reader import Message, messages
from tests.factories import event, events
from tests.polling import wait_for
from tests.servers import requires_postgresql


def new_hub(**options) -> StreamHub:
    return StreamHub(poll_interval=60, buffer_events=options.pop("buffer_events", 10_000), watch=False)


def open_stream(hub, params, start, *, heartbeat=3600.0, max_lag=100_000) -> StreamSession:
    session = StreamSession(hub, parse_stream_filters(params), start, heartbeat=heartbeat, max_lag=max_lag)
    hub.subscribe(ThreadWaker(), session.filters)
    return session


def read(session: StreamSession) -> list[Message]:
    """Everything the stream sends until it would wait for news (or ends)."""
    sent = b""
    while (step := session.next_step()) is not None:
        if step is CATCH_UP:
            step = session.catch_up()
        if not isinstance(step, bytes):
            break
        sent += step
    return [message for message in messages([sent]) if isinstance(message, Message)]


def event_ids(sent: list[Message]) -> list[str]:
    return [json.loads(message.data)["event_id"] for message in sent if message.event == "event"]


def stored_order(topic: str) -> list[str]:
    """The topic's stored events in stream order: by store transaction, then as GET /events lists them."""
    rows = Event.objects.filter(topic=topic).order_by("store_commit__position", "timestamp", "id")
    return [str(event_id) for event_id in rows.values_list("event_id", flat=True)]


@pytest.fixture
def store(publish, drain):
    """Publish and store each body in a transaction of its own."""

    def _store(*bodies):
        for body in bodies:
            assert publish(body).status_code == 202
            drain()

    return _store


@pytest.mark.django_db
def test_each_store_transaction_gets_the_next_position_and_its_events_point_to_it(store):
    store(events(3, "a.b") + events(2, "c.d"), events(4, "a.b"))
    first, second = StoreCommit.objects.order_by("position")
    assert (first.position, first.event_count, first.topics) == (5, 5, "a.b c.d")
    assert (second.position, second.event_count, second.topics) == (9, 4, "a.b")
    assert Event.objects.filter(store_commit=first).count() == 5
    assert commit_log.head() == 9


@pytest.mark.django_db
def test_a_transaction_that_stored_only_duplicates_takes_no_position(store):
    body = events(3)
    store(body, body)
    assert list(StoreCommit.objects.values_list("position", flat=True)) == [3]


@pytest.mark.django_db
def test_a_stream_sends_each_matching_event_once_in_store_order(store):
    hub = new_hub()
    wanted, other = events(3, "orders.eu.created"), events(2, "orders.us.created")
    late = event("orders.eu.created", timestamp="2020-01-01T00:00:00Z")  # arrives late with an old timestamp
    store([*wanted[:2], *other], [wanted[2], other[0], wanted[0]], [late, *events(2, "orders.eu.created")])

    sent = read(open_stream(hub, {"topic": "orders.eu.created"}, stream_cursor.after_commit(0)))

    assert event_ids(sent) == stored_order("orders.eu.created")
    assert len(event_ids(sent)) == 6  # one duplicate dropped, nothing of other topics
    assert event_ids(sent)[3] == late["event_id"]  # after what was stored before it, first of its transaction
    assert all(json.loads(message.data)["topic"] == "orders.eu.created" for message in sent if message.event == "event")


@pytest.mark.django_db
def test_each_message_is_the_stored_event_as_msgspec_writes_it_from_the_buffer_and_from_the_store(store):
    # The database builds the JSON: it must match msgspec's, byte for byte, whatever the values.
    hub = new_hub()
    start = stream_cursor.after_commit(0)
    buffered = open_stream(hub, {"topic": "t.odd"}, start)
    odd_source = 's\u00e9 "q" \\ \n\t\u0001 \u2028'
    # With a filter beyond the pattern, a stream gets the events one by one (read_items), not joined.
    sources = (odd_source, "svc-a")
    filtered = {source: open_stream(hub, {"topic": "t.odd", "source": source}, start) for source in sources}
    tricky = [
        event("t.odd", timestamp="2026-03-04T05:06:07.000001+02:00", source=odd_source),
        event("t.odd", timestamp="1969-12-31T23:59:58.5Z", payload={"k": ["\u00e9", 1.5, None, {"x": "\u0007"}]}),
        event("t.odd", timestamp="2026-01-01T00:00:00Z", payload={}),
    ]
    store(tricky)
    hub.advance()
    rows = (
        Event.objects.filter(topic="t.odd")
        .annotate(payload_text=Cast("payload", TextField()))
        .order_by("timestamp", "id")
        .values_list("event_id", "timestamp", "source", "payload_text", "id", "store_commit__position")
    )
    expected = [
        (
            stream_cursor.encode(stream_cursor.event_key(position, timestamp, pk)),
            msgspec.json.encode(
                {
                    "topic": "t.odd",
                    "event_id": event_id,
                    "timestamp": timestamp,
                    "source": source,
                    "payload": msgspec.Raw(payload_text.encode()),
                }
            ).decode(),
        )
        for event_id, timestamp, source, payload_text, pk, position in rows
    ]

    def sent(session):
        return [(message.id, message.data) for message in read(session) if message.event == "event"]

    assert len(expected) == 3
    assert sent(buffered) == expected
    assert sent(open_stream(hub, {"topic": "t.odd"}, start)) == expected  # catching up from the store
    for source in sources:
        expected_from_source = [message for message, row in zip(expected, rows) if row[2] == source]
        assert expected_from_source
        assert sent(filtered[source]) == expected_from_source
        assert sent(open_stream(hub, {"topic": "t.odd", "source": source}, start)) == expected_from_source


@pytest.mark.django_db
def test_resuming_from_any_cursor_sends_exactly_what_follows_it(store):
    hub = new_hub()
    store(*[events(3, "t.a") + events(2, "t.b") for _ in range(3)])
    everything = read(open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0)))
    ids = event_ids(everything)
    assert ids == stored_order("t.a")

    for index, message in enumerate(everything):
        if message.event != "event":
            continue
        resumed = read(open_stream(hub, {"topic": "t.a", "after": message.id}, stream_cursor.decode(message.id, "")))
        assert event_ids(resumed) == ids[ids.index(json.loads(message.data)["event_id"]) + 1 :], index


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{"topic": "t.*"}, {"topic": "t.*", "source": "svc-b"}], ids=["joined", "tested"])
def test_resuming_inside_what_the_buffer_holds_sends_exactly_what_follows(store, params):
    # Streams of a pattern alone get their messages joined by the database, per
    # chunk: a cursor inside a chunk (between two of its commits, or inside
    # one) reads from the store up to the chunk's end, then from the buffer.
    hub = new_hub()
    start = stream_cursor.after_commit(commit_log.head())
    open_stream(hub, params, start)  # the pattern is wanted before the events are read
    store(*[events(2, "t.a", source="svc-b") + events(2, "t.b", source="svc-b") + events(1, "t.a") for _ in range(3)])
    hub.advance()  # one chunk of three commits
    store(events(2, "t.b", source="svc-b"))
    hub.advance()
    matching = Event.objects.filter(topic__startswith="t.", source=params.get("source", F("source")))
    stored = [
        (str(event_id), stream_cursor.event_key(position, timestamp, pk))
        for event_id, position, timestamp, pk in matching.order_by(
            "store_commit__position", "timestamp", "id"
        ).values_list("event_id", "store_commit__position", "timestamp", "id")
    ]
    everything = read(open_stream(hub, params, start))
    assert event_ids(everything) == [event_id for event_id, _ in stored]
    assert len(stored) == (14 if "source" in params else 17)

    commit_ends = [str(position) for position in StoreCommit.objects.values_list("position", flat=True)]
    for cursor in [message.id for message in everything] + commit_ends:
        key = stream_cursor.decode(cursor, "")
        resumed = event_ids(read(open_stream(hub, params, key)))
        assert resumed == [event_id for event_id, event_key in stored if event_key > key], cursor


@pytest.mark.django_db
def test_a_stream_resumed_inside_a_chunk_catches_up_to_its_end_and_comes_back_to_the_buffer(
    store, django_assert_num_queries
):
    hub = new_hub()
    start = stream_cursor.after_commit(commit_log.head())
    open_stream(hub, {"topic": "t.a"}, start)
    store(events(2, "t.a"), events(2, "t.a"))
    hub.advance()  # one chunk of two commits
    first_commit = StoreCommit.objects.order_by("position").first().position
    resumed = open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(first_commit))
    store(events(2, "t.a"))  # the store is ahead of the buffer while the stream catches up

    assert event_ids(read(resumed)) == stored_order("t.a")[2:4]  # up to the chunk's end, not the store's
    store(events(2, "t.a"))
    hub.advance()  # the next chunk starts where the catch-up stopped

    with django_assert_num_queries(0):
        sent = event_ids(read(resumed))
    assert sent == stored_order("t.a")[4:]


@pytest.mark.django_db
def test_streams_read_new_events_from_the_shared_buffer_without_a_query(store, django_assert_num_queries):
    hub = new_hub()
    store(events(2, "t.a"))
    start = stream_cursor.after_commit(commit_log.head())
    early = open_stream(hub, {"topic": "t.a"}, start)
    read(early)
    store(events(3, "t.a") + events(3, "t.b"))
    hub.advance()  # what the watcher does: one read for every stream of the process
    late = open_stream(hub, {"topic": "t.b"}, start)  # its pattern was not asked for yet

    with django_assert_num_queries(0):
        from_buffer = event_ids(read(early))
    from_store = event_ids(read(late))

    assert from_buffer == stored_order("t.a")[2:]
    assert from_store == stored_order("t.b")


@pytest.mark.django_db
def test_streams_of_overlapping_patterns_each_get_their_events_from_one_read(store, django_assert_num_queries):
    hub = new_hub()
    start = stream_cursor.after_commit(commit_log.head())
    selections = {
        "one topic": ({"topic": "t.a"}, Event.objects.filter(topic="t.a")),
        "two topics": ({"topic": "t.*"}, Event.objects.filter(topic__in=["t.a", "t.b"])),
        "two topics, one source": (
            {"topic": "t.*", "source": "svc-b"},
            Event.objects.filter(topic__in=["t.a", "t.b"], source="svc-b"),
        ),
        "nothing new": ({"topic": "u.*"}, Event.objects.none()),
    }
    streams = {name: open_stream(hub, params, start) for name, (params, _) in selections.items()}
    store(events(2, "t.b") + events(2, "t.a", source="svc-b") + events(1, "v.c"), events(2, "t.b", source="svc-b"))

    # The head, the new commits, then their events: on PostgreSQL one query for
    # every pattern; on SQLite one per pattern that joins its messages (and
    # one for the streams that test events one by one).
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 5):
        hub.advance()

    for name, (_, expected) in selections.items():
        in_stream_order = expected.order_by("store_commit__position", "timestamp", "id")
        with django_assert_num_queries(0):
            sent = event_ids(read(streams[name]))
        assert sent == [str(event_id) for event_id in in_stream_order.values_list("event_id", flat=True)], name
    assert [len(event_ids(read(open_stream(hub, params, start)))) for params, _ in selections.values()] == [2, 6, 4, 0]


@pytest.mark.django_db
def test_a_cursor_older_than_the_buffer_catches_up_from_the_store(store):
    hub = new_hub(buffer_events=2)
    open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0))
    for _ in range(4):
        store(events(2, "t.a"))
        hub.advance()
    sent = read(open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0)))
    assert event_ids(sent) == stored_order("t.a")
    assert len(event_ids(sent)) == 8


@pytest.mark.django_db
def test_after_a_spell_without_streams_the_hub_reads_on_from_the_head_not_from_where_it_stopped(store):
    hub = new_hub()
    first = ThreadWaker()
    hub.subscribe(first, parse_stream_filters({"topic": "t.a"}))
    store(events(2, "t.a"))
    hub.advance()
    hub.unsubscribe(first)  # no stream open: the watcher rests
    store(events(3, "t.a"), events(3, "t.a"))

    head = commit_log.head()
    late = open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(head))
    store(events(1, "t.a"))
    hub.advance()

    # Only the commit stored since the stream opened was read, not the six events before it.
    assert [(chunk.start, chunk.size) for chunk in hub._chunks] == [(head, 1)]
    assert event_ids(read(late)) == stored_order("t.a")[-1:]
    # A stream resuming from before the spell gets everything, what the buffer lacks from the store.
    resumed = read(open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0)))
    assert event_ids(resumed) == stored_order("t.a")


@pytest.mark.django_db
def test_a_read_the_hub_started_again_during_is_dropped(store, monkeypatch):
    hub = new_hub()
    first = ThreadWaker()
    hub.subscribe(first, parse_stream_filters({"topic": "t.a"}))
    store(events(2, "t.a"))
    real_read = stream_hub.read_for_streams

    def the_last_stream_closes_and_another_opens_meanwhile(*args):
        hub.unsubscribe(first)
        store(events(1, "t.a"))
        hub.subscribe(ThreadWaker(), parse_stream_filters({"topic": "t.a"}))
        return real_read(*args)

    monkeypatch.setattr(stream_hub, "read_for_streams", the_last_stream_closes_and_another_opens_meanwhile)
    hub.advance()
    # The new spell starts at the head of its own start; the older read left no chunk behind.
    assert hub.head == commit_log.head()
    assert hub._chunks == []


@pytest.mark.django_db
def test_commits_no_stream_wants_do_not_pile_up_in_the_buffer(store, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(stream_hub, "MAX_CHUNKS", 3)
    hub = new_hub()
    idle = open_stream(hub, {"topic": "t.quiet"}, stream_cursor.after_commit(0))
    for _ in range(6):
        store(events(1, "t.busy"))
        hub.advance()
    assert len(hub._chunks) == 3
    # Its cursor is older than the buffer, but the buffer knows nothing of its topic came since: no catching up.
    with django_assert_num_queries(0):
        assert event_ids(read(idle)) == []
    assert idle.key == stream_cursor.after_commit(commit_log.head())
    late = read(open_stream(hub, {"topic": "t.busy"}, stream_cursor.after_commit(0)))  # older than the buffer
    assert event_ids(late) == stored_order("t.busy")


@pytest.mark.django_db
def test_since_starts_with_the_events_stored_since_then(store):
    store(events(2, "t.a"))
    StoreCommit.objects.update(stored_at=timezone.now() - timedelta(hours=2))
    store(events(3, "t.a"))
    params = {"topic": "t.a", "since": "1h"}
    filters = parse_stream_filters(params)
    start = stream_cursor.after_commit(commit_log.position_before(filters.since))
    assert event_ids(read(open_stream(new_hub(), params, start))) == stored_order("t.a")[2:]


@pytest.mark.django_db
def test_a_quiet_stream_sends_keep_alives_with_the_position_it_reached(store):
    hub = new_hub()
    session = open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0), heartbeat=0.0)
    store(events(2, "t.b"))  # nothing for this stream, but the stream moves past it
    hub.advance()
    sent = b""
    for _ in range(3):
        step = session.next_step()
        sent += step if isinstance(step, bytes) else session.catch_up() if step is CATCH_UP else b""
    # The first keep-alive carries the position reached; the next, with nothing new, only keeps alive.
    assert sent == f"retry: 1000\nid: 0\n\n: keep-alive\nid: {commit_log.head()}\n\n: keep-alive\n\n".encode()


@pytest.mark.django_db
def test_a_client_that_falls_too_far_behind_gets_an_overflow_with_its_resume_cursor(store):
    hub = new_hub()
    session = open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0), max_lag=3)
    read(session)  # up to date: nothing to read
    store(events(2, "t.a"), events(2, "t.a"))
    hub.advance()  # 4 stored events the client has not read: more than 3 behind

    overflow = read(session)

    assert [message.event for message in overflow] == ["overflow"]
    assert json.loads(overflow[0].data)["after"] == overflow[0].id == "0"
    assert session.next_step() is None
    resumed = read(open_stream(hub, {"topic": "t.a"}, stream_cursor.decode(overflow[0].id, "after")))
    assert event_ids(resumed) == stored_order("t.a")


class CountingWaker(ThreadWaker):
    def __init__(self):
        super().__init__()
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1
        super().wake()


@pytest.mark.django_db
def test_new_events_wake_only_the_streams_whose_pattern_they_match(store):
    hub = new_hub()
    wakers = {pattern: CountingWaker() for pattern in ("t.a", "t.*", "t.b", "other.>")}
    for pattern, waker in wakers.items():
        hub.subscribe(waker, parse_stream_filters({"topic": pattern}))
    hub.subscribe(filtered := CountingWaker(), parse_stream_filters({"topic": "t.b", "source": "svc"}))

    store(events(2, "t.a"))
    hub.advance()
    store(events(1, "t.a") + events(1, "t.b"))
    hub.advance()

    assert {pattern: waker.wakes for pattern, waker in wakers.items()} == {"t.a": 2, "t.*": 2, "t.b": 1, "other.>": 0}
    assert filtered.wakes == 1
    hub.close_all()  # the server stopping wakes every stream
    assert wakers["other.>"].wakes == 1


@pytest.mark.django_db
def test_a_stream_that_slept_while_other_topics_passed_its_max_lag_is_not_behind(store):
    hub = new_hub()
    session = open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0), heartbeat=0.0, max_lag=3)
    assert session.next_step().startswith(b"retry:")
    assert session.next_step() == b": keep-alive\n\n"  # up to date
    store(events(5, "t.b"), events(5, "t.b"))  # 10 events, none for this stream: it is not woken
    hub.advance()

    heartbeat = session.next_step()  # what its heartbeat sends

    assert heartbeat == f": keep-alive\nid: {commit_log.head()}\n\n".encode()  # not an overflow
    store(events(2, "t.a"))
    hub.advance()
    assert event_ids(messages([session.next_step()])) == stored_order("t.a")


@pytest.mark.django_db
def test_streams_end_with_their_position_when_the_server_stops(store):
    hub = new_hub()
    store(events(1, "t.a"))
    session = open_stream(hub, {"topic": "t.a"}, stream_cursor.after_commit(0))
    read(session)
    hub.close_all()
    assert session.next_step() == f": the server is stopping\nid: {commit_log.head()}\n\n".encode()
    assert session.next_step() is None


# --- the view's answers that are not streams -----------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "headers", "parameter"),
    [
        ("topic=a..b", {}, "topic"),
        ("", {}, "topic"),
        ("topic=a.b&until=1h", {}, "until"),
        ("topic=a.b&order=desc", {}, "order"),
        ("topic=a.b&after=nope", {}, "after"),
        ("topic=a.b&after=99", {}, "after"),
        ("topic=a.b", {"HTTP_LAST_EVENT_ID": "1-x"}, "Last-Event-ID"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(api, query, headers, parameter):
    response = api.get(f"/events/stream?{query}", **headers)
    assert response.status_code == 400
    assert parameter in response.json()


@pytest.mark.django_db
def test_protected_reads_need_a_read_key(api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PROTECT_READS": True}
    response = api.get("/events/stream?topic=a.b")
    assert response.status_code == 401


@pytest.mark.django_db
def test_beyond_the_cap_on_streams_a_503_says_when_to_retry(api, settings, monkeypatch):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "STREAM_MAX_PER_PROCESS": 1, "STREAM_RETRY_AFTER": 7}
    hub = new_hub()
    hub.subscribe(ThreadWaker(), parse_stream_filters({"topic": "a.b"}))
    monkeypatch.setattr(stream_views, "get_hub", lambda: hub)

    response = api.get("/events/stream?topic=a.b")

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert "1 live streams" in response.json()["detail"]


# --- PostgreSQL: positions become visible in order --------------------------------


def someone_waits_for_an_advisory_lock() -> bool:
    # In this database only: tests running in parallel wait for locks of their own.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


@requires_postgresql()
@pytest.mark.django_db(transaction=True)
def test_a_later_transaction_waits_for_the_earlier_one_to_commit_before_taking_a_position():
    recorded = threading.Event()
    release = threading.Event()
    later_done = threading.Event()

    def earlier():
        with transaction.atomic():
            commit_log.record(commit_log.new_commit_id(), {"a.b": 2})
            recorded.set()
            release.wait(60)
        connection.close()

    def later():
        recorded.wait(60)
        with transaction.atomic():
            commit_log.record(commit_log.new_commit_id(), {"a.b": 3})
        later_done.set()
        connection.close()

    threads = [threading.Thread(target=earlier), threading.Thread(target=later)]
    for thread in threads:
        thread.start()
    try:
        wait_for(someone_waits_for_an_advisory_lock, message="the later transaction to wait for the position lock")
        assert not later_done.is_set()
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    assert later_done.is_set()
    # Positions in commit order, whatever order the ids were drawn in.
    assert list(StoreCommit.objects.order_by("position").values_list("position", "event_count")) == [(2, 2), (5, 3)]
