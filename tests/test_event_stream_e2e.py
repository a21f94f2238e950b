"""The live tail in real servers: exact delivery across disconnects, SIGKILL, another server, and SIGTERM.

Each test runs gunicorn as production does (tests/servers.py) on a database
of its own, on the suite's engine, and reads streams over HTTP with the
publisher's stream reader, the way the tail_events command does.
"""

import json
import os
import signal
import sys
import threading

import pytest
import requests

from events import stream_cursor
from harness.processes import STREAM_PROCESS_NICENESS
from publisher.stream_reader import Comment, EventStreamReader, Message
from tests.factories import events
from tests.polling import wait_for
from tests.servers import AggregatorServer, ManagedProcess, StreamProcess


class StreamRecorder:
    """Follows a stream in a thread and records what it sends."""

    def __init__(self, url: str, params: dict, *, after: str | None = None, reconnect: bool = True):
        self.reader = EventStreamReader(url, params, after=after)
        self.messages: list[Message] = []
        self.comments: list[str] = []
        self.error: Exception | None = None
        self.ended = threading.Event()
        self._reconnect = reconnect
        self._thread = threading.Thread(target=self._record, daemon=True)
        self._thread.start()
        wait_for(lambda: self.reader.last_id is not None or self.error, message="the stream to open")
        assert self.error is None, self.error

    def _record(self) -> None:
        try:
            for item in self.reader.follow() if self._reconnect else self.reader.once():
                if isinstance(item, Comment):
                    self.comments.append(item.text)
                elif item.event:
                    self.messages.append(item)
        except Exception as exc:  # what a client would see: kept for the test to assert on
            self.error = exc
        finally:
            self.ended.set()

    def event_ids(self) -> list[str]:
        return [_event_id(message) for message in self.messages if message.event == "event"]

    def wait_for_events(self, count: int) -> list[str]:
        return wait_for(lambda: len(ids := self.event_ids()) >= count and ids, message=f"{count} streamed events")

    def close(self) -> None:
        self.reader.close()
        self._thread.join(30)


def _event_id(message: Message) -> str:
    return json.loads(message.data)["event_id"]


def ids_of(published: list[dict]) -> list[str]:
    return [event["event_id"] for event in published]


def assert_in_stream_order(recorder: StreamRecorder) -> None:
    keys = [stream_cursor.decode(message.id, "id") for message in recorder.messages if message.event == "event"]
    assert keys == sorted(set(keys)), "cursors go strictly forward"


@pytest.fixture
def server(tmp_path, service_database):
    server = AggregatorServer(tmp_path, database_url=service_database.url, LOGGREGATOR_STREAM_HEARTBEAT="0.5")
    server.start()
    yield server
    server.stop()


def test_a_subscriber_sees_each_matching_event_once_in_store_order(server):
    recorder = StreamRecorder(server.url, {"topic": "orders.eu.created"})
    wanted, other = events(300, "orders.eu.created"), events(100, "orders.us.created")

    assert server.publish(wanted[:200] + other[:50]).status_code == 202  # a batch
    for event in wanted[200:230]:  # single events
        assert server.publish(event).status_code == 202
    assert server.publish(wanted[:40] + other[50:] + wanted[230:]).status_code == 202  # with duplicates
    assert server.publish(wanted[100]).status_code == 202  # a single duplicate

    streamed = recorder.wait_for_events(300)
    server.wait_until_processed(received=402)
    wait_for(lambda: "keep-alive" in recorder.comments, message="a keep-alive on the quiet stream")
    recorder.close()
    assert recorder.error is None
    assert len(streamed) == len(set(streamed)) == 300
    assert set(streamed) == set(ids_of(wanted))
    assert_in_stream_order(recorder)


def test_the_stream_response_is_never_buffered_or_compressed(server):
    response = requests.get(
        f"{server.url}/events/stream",
        params={"topic": "a.b"},
        headers={"Accept-Encoding": "gzip"},
        stream=True,
        timeout=30,
    )
    with response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert response.headers["Cache-Control"] == "no-cache"
        assert "Content-Encoding" not in response.headers
        assert next(response.iter_content(chunk_size=None)).startswith(b"retry: ")


@pytest.mark.slow
def test_resume_after_a_disconnect_a_sigkill_and_on_another_server_misses_nothing_and_repeats_nothing(tmp_path, server):
    params = {"topic": "t.a"}
    sent: list[dict] = []

    def publish(to: AggregatorServer, body):
        sent.extend(event for event in (body if isinstance(body, list) else [body]) if event["topic"] == "t.a")
        assert to.publish(body).status_code == 202

    first = StreamRecorder(server.url, params, reconnect=False)
    publish(server, events(100, "t.a") + events(50, "t.b"))
    first.wait_for_events(100)
    first.close()  # the client goes away

    publish(server, events(80, "t.a"))
    for event in events(20, "t.a"):
        publish(server, event)
    resumed = StreamRecorder(server.url, params, after=first.reader.last_id)  # reconnects by itself from now on
    resumed.wait_for_events(100)

    server.kill()  # SIGKILL under the open stream
    other = AggregatorServer(tmp_path, database_url=server.database_url, name="other-server")
    other.start()
    try:
        # Another host on the same database takes the publishes and a stream resumed there.
        publish(other, events(150, "t.a") + events(30, "t.c"))
        switched = StreamRecorder(other.url, params, after=first.reader.last_id)
        server.start()  # the first server is back: the resumed stream reconnects to it
        publish(other, events(50, "t.a"))

        resumed.wait_for_events(300)
        switched.wait_for_events(300)
    finally:
        other.stop()
    for recorder in (resumed, switched):
        recorder.close()
        union = first.event_ids() + recorder.event_ids()
        assert len(union) == len(set(union)), "nothing twice"
        assert sorted(union) == sorted(ids_of(sent)), "nothing missing"
    assert_in_stream_order(switched)


@pytest.mark.slow
def test_sigterm_with_streams_open_ends_them_cleanly_and_the_server_exits(tmp_path, service_database):
    server = AggregatorServer(tmp_path, database_url=service_database.url, GUNICORN_GRACEFUL_TIMEOUT="20")
    server.start()
    recorders = [StreamRecorder(server.url, {"topic": f"t.{n}"}, reconnect=False) for n in range(3)]
    server.publish(events(5, "t.0"))
    recorders[0].wait_for_events(5)

    assert server.stop(signal.SIGTERM) == 0

    for recorder in recorders:
        assert recorder.ended.wait(30)
        assert recorder.error is None  # the response ended properly, not cut
        assert "the server is stopping" in recorder.comments
    log = server.log()
    assert "SIGKILL" not in log and "WORKER TIMEOUT" not in log  # no worker had to be killed
    assert "In-process consumer stopped" in log


@pytest.mark.slow
def test_a_stream_process_streams_what_the_web_server_stores_and_stops_cleanly(tmp_path, server):
    streams = StreamProcess(tmp_path, database_url=server.database_url, GUNICORN_GRACEFUL_TIMEOUT="20")
    streams.start()
    try:
        # Below our CPU priority, its worker included: the write path's processes come first.
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        for pid in [streams.process.pid, *_children(streams.process.pid)]:
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + STREAM_PROCESS_NICENESS)
        recorder = StreamRecorder(streams.url, {"topic": "t.a"}, reconnect=False)
        published = events(200, "t.a")
        assert server.publish(published + events(20, "t.b")).status_code == 202
        for event in published[:10]:  # duplicates, single
            assert server.publish(event).status_code == 202

        streamed = recorder.wait_for_events(200)
        server.wait_until_processed(received=230)
        assert streams.stats()["unique_processed"] == 220  # the same store, seen from the stream process
    finally:
        assert streams.stop(signal.SIGTERM) == 0
    assert recorder.ended.wait(30)
    assert recorder.error is None
    assert "the server is stopping" in recorder.comments
    assert sorted(streamed) == sorted(ids_of(published))
    assert "In-process consumer started" not in streams.log()  # the web server's consumer stores the events


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


@pytest.mark.slow
def test_tail_events_prints_the_live_stream_until_sigterm(tmp_path, server):
    tail = ManagedProcess("tail_events", tmp_path, server.env)
    # From the start of this empty store: every event published from now on, wherever the command is then.
    tail.spawn([sys.executable, "manage.py", "tail_events", "t.a", "--url", server.url, "--json", "--after", "0"])
    published = events(30, "t.a")
    assert server.publish(published + events(10, "t.b")).status_code == 202

    printed = wait_for(lambda: len(lines := _printed_events(tail)) >= 30 and lines, message="30 printed events")

    assert tail.stop(signal.SIGTERM) == 0
    assert sorted(printed) == sorted(ids_of(published))
    assert "Resume with --after" in tail.log()


def _printed_events(tail: ManagedProcess) -> list[str]:
    return [json.loads(line)["event_id"] for line in tail.log().splitlines() if line.startswith("{")]
