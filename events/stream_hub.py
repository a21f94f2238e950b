"""One watcher per process feeds every live stream of the process.

The watcher is a thread that notices new store transactions (a NOTIFY on
PostgreSQL, a look at the newest commit position every poll interval on
SQLite: one indexed MAX(), whatever the number of streams), reads their
events once, and keeps them in a bounded buffer that every stream of the
process reads from. Only the events of topics that some open stream's pattern
matches are read; commits nobody wants cost the read of their log row. Only
the streams whose pattern matches some of the new events are woken: the
others sleep until their heartbeat, whatever is stored meanwhile.

Most streams filter by topic pattern alone: for each such pattern the buffer
holds its events' messages joined (events.stream_messages.read_for_streams), so
delivering an event to each such stream costs no Python per event. Streams
with more filters read events one by one, to test them.

A chunk of the buffer records what it was read for: a stream whose pattern
came later, whose cursor is older than the buffer, or (for joined messages)
inside a chunk, reads that part from the store itself (events.stream), then
comes back to the buffer.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from events import commit_log, stream_cursor, wakeup
from events.stream_cursor import Key
from events.stream_filters import StreamFilters
from events.stream_messages import StreamItem, read_for_streams

logger = logging.getLogger(__name__)

# Chunks the buffer keeps at most (one per look that found new commits).
MAX_CHUNKS = 256


@dataclass(frozen=True)
class Chunk:
    """The events of the commits after position `start` up to `end`, for the streams open when it was read.

    `items`: the events, by topic, of the topics that the patterns in `covers`
    match (streams with filters); `messages`: for each pattern of a stream
    without other filters, its events' messages joined in stream order.
    """

    start: int
    end: int
    covers: frozenset[str]
    items: dict[str, list[StreamItem]]
    messages: dict[str, bytes]
    size: int


@dataclass(frozen=True)
class CatchUp:
    """The buffer cannot serve a stream: it reads from the store, up to position `until` (None: as far as it can)."""

    until: int | None = None


class ThreadWaker:
    """Wakes a stream served by a thread (runserver, a WSGI server)."""

    def __init__(self):
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()


class AsyncWaker:
    """Wakes a stream served on an event loop (ASGI), from the watcher's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._event = asyncio.Event()

    def wake(self) -> None:
        wake_on_loop(self.loop, [self])

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        self._event.clear()


def wake_on_loop(loop: asyncio.AbstractEventLoop, wakers: list[AsyncWaker]) -> None:
    """Wake the streams of one event loop with one call into it (not one per stream)."""
    try:
        loop.call_soon_threadsafe(_set_all, wakers)
    except RuntimeError:
        pass  # the loop is closed: its streams are gone


def _set_all(wakers: list[AsyncWaker]) -> None:
    for waker in wakers:
        waker._event.set()


class StreamHub:
    def __init__(self, *, poll_interval: float, buffer_events: int, watch: bool = True):
        self.poll_interval = poll_interval
        # False: no watcher thread; whoever made the hub calls advance() (tests).
        self.watch = watch
        self.buffer_events = buffer_events
        self.closing = False
        self._lock = threading.Lock()
        self._subscribers: dict[object, StreamFilters] = {}  # waker -> what its stream selects
        # For each pattern whose messages are joined: the end of the last chunk
        # that has (or, read before the pattern was wanted, may have) its events.
        # Streams past it have nothing to read up to the head, however old
        # their cursor: a quiet stream never needs the store.
        self._quiet_after: dict[str, int] = {}
        self._chunks: list[Chunk] = []  # in commit order
        self._buffered = 0
        self.head: int | None = None  # the position read up to
        self._floor = 0  # the buffer holds what was stored after this position
        self._wakeup = threading.Event()
        self._active = threading.Event()  # set while streams are open
        self._thread: threading.Thread | None = None
        # Queries the watcher made: the cost of this process's streams on the database.
        self.queries = 0

    # --- streams ------------------------------------------------------------
    @property
    def stream_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, waker, filters: StreamFilters) -> None:
        """Call from a thread that may query the database (the first subscription reads the head)."""
        with self._lock:
            if not self._subscribers:
                self._start_at(commit_log.head())
            self._subscribers[waker] = filters
            if filters.topic_only:
                self._quiet_after.setdefault(filters.pattern.text, self.head)
            self._active.set()
            if self._thread is None and self.watch:
                self._thread = threading.Thread(target=self._run, name="loggregator-stream-hub", daemon=True)
                self._thread.start()

    def _start_at(self, position: int) -> None:
        """Read from `position` on, with an empty buffer: for the first stream, and again after none was open.

        The watcher rests while no stream is open; picking up where it
        stopped would read everything stored meanwhile (a night's events, for
        the first stream of the morning) into a buffer that keeps only the
        last STREAM_BUFFER_EVENTS. A stream with an older cursor catches up
        from the store, as one older than the buffer always does.
        """
        self.head = self._floor = position
        self._chunks.clear()
        self._buffered = 0
        self._quiet_after.clear()

    def unsubscribe(self, waker) -> None:
        with self._lock:
            filters = self._subscribers.pop(waker, None)
            if not self._subscribers:
                self._active.clear()
            if filters is not None and filters.pattern.text not in self._joined_patterns():
                self._quiet_after.pop(filters.pattern.text, None)

    def _joined_patterns(self) -> set[str]:
        return {filters.pattern.text for filters in self._subscribers.values() if filters.topic_only}

    def read(self, filters: StreamFilters, key: Key) -> tuple[bytes | list[StreamItem], Key] | CatchUp:
        """What the buffer holds for a stream after `key`, and the key it reaches; or where to catch up to.

        A stream without filters beyond its pattern gets its messages, joined;
        any other stream gets the events of its pattern's topics to test.
        """
        with self._lock:
            quiet_after = self._quiet_after.get(filters.pattern.text) if filters.topic_only else None
            if quiet_after is not None and key >= stream_cursor.after_commit(quiet_after):
                return b"", max(key, stream_cursor.after_commit(self.head))
            if key < stream_cursor.after_commit(self._floor):
                return CatchUp()
            first = bisect.bisect_right(self._chunks, key, key=lambda chunk: stream_cursor.after_commit(chunk.end))
            pending = self._chunks[first:]
            if not pending:
                return (b"" if filters.topic_only else []), key
            if filters.topic_only:
                found = self._read_messages(filters.pattern.text, key, pending)
            else:
                found = self._read_items(filters.pattern, key, pending)
        # Nothing the buffer holds was read for this stream: the store has it.
        return found or CatchUp(pending[0].end)

    @staticmethod
    def _read_messages(pattern_text: str, key: Key, pending: list[Chunk]) -> tuple[bytes, Key] | None:
        if key != stream_cursor.after_commit(pending[0].start):
            return None  # a cursor inside a chunk: joined messages cannot be split there
        parts, reached = [], key
        for chunk in pending:
            messages = chunk.messages.get(pattern_text)
            if messages is None:
                break
            parts.append(messages)
            reached = stream_cursor.after_commit(chunk.end)
        return (b"".join(parts), reached) if reached != key else None

    @staticmethod
    def _read_items(pattern, key: Key, pending: list[Chunk]) -> tuple[list[StreamItem], Key] | None:
        items: list[StreamItem] = []
        reached = key
        for chunk in pending:
            if pattern.text not in chunk.covers:
                break
            for topic, topic_items in chunk.items.items():
                if pattern.matches(topic):
                    start = bisect.bisect_right(topic_items, key, key=lambda item: item.key)
                    items.extend(topic_items[start:])
            reached = stream_cursor.after_commit(chunk.end)
        if reached == key:
            return None
        items.sort()
        return items, reached

    def close_all(self) -> None:
        """The server is stopping: every stream ends now, cleanly."""
        self.closing = True
        self._wake_streams()

    def _wake_streams(self, quiet_patterns: frozenset[str] = frozenset()) -> None:
        """Wake the streams, except those whose pattern is in `quiet_patterns` (nothing new for them)."""
        with self._lock:
            wakers = [
                waker for waker, filters in self._subscribers.items() if filters.pattern.text not in quiet_patterns
            ]
        by_loop: dict[asyncio.AbstractEventLoop, list[AsyncWaker]] = defaultdict(list)
        for waker in wakers:
            if isinstance(waker, AsyncWaker):
                by_loop[waker.loop].append(waker)
            else:
                waker.wake()
        for loop, loop_wakers in by_loop.items():
            wake_on_loop(loop, loop_wakers)

    # --- the watcher ----------------------------------------------------------
    def _run(self) -> None:
        stop = threading.Event()  # a daemon thread: it ends with the process
        if wakeup.is_supported():
            wakeup.Listener(self._wakeup, stop, channel=commit_log.STORED_CHANNEL).start()
        backoff = 0.0
        while True:
            self._active.wait()
            self._wakeup.wait(self.poll_interval)
            self._wakeup.clear()
            close_old_connections()
            try:
                self.advance()
            except DatabaseError:
                backoff = min(30.0, max(1.0, backoff * 2))
                logger.warning("Reading new events for the live streams failed; retrying in %.0f s", backoff)
                connection.close()
                stop.wait(backoff)
            else:
                backoff = 0.0

    def advance(self) -> None:
        """Read what was stored since the last look into the buffer, and wake the streams."""
        head = commit_log.head()
        self.queries += 1
        with self._lock:
            loaded = self.head
            subscriptions = list(self._subscribers.values())
        if head <= loaded:
            return
        commits = [
            commit
            for commit in commit_log.commits_after(loaded, max_events=self.buffer_events)
            if commit.position <= head
        ]
        self.queries += 1
        patterns = {filters.pattern.text: filters.pattern for filters in subscriptions}
        joined = {filters.pattern.text for filters in subscriptions if filters.topic_only}
        tested = {filters.pattern.text for filters in subscriptions if not filters.topic_only}
        topics = {topic for commit in commits for topic in commit.topics}
        matched = {text: pattern.matching(topics) for text, pattern in patterns.items()}
        wanted = set().union(*(matched[text] for text in tested))
        read = read_for_streams(commits, wanted, {text: matched[text] for text in joined})
        self.queries += read.queries
        chunk = Chunk(
            start=loaded,
            end=commits[-1].position,
            covers=frozenset(tested),
            items=read.items,
            messages=read.messages,
            size=read.size,
        )
        with self._lock:
            if self.head != loaded:
                return  # the hub started again meanwhile (_start_at): this read is of an older spell
            self._chunks.append(chunk)
            self._buffered += chunk.size
            for text in self._quiet_after:
                if chunk.messages.get(text, True):  # its events, or read before it was wanted
                    self._quiet_after[text] = chunk.end
            self.head = chunk.end
            # Bounded by events and by chunks: commits nobody wants make empty chunks.
            drop = 0
            while drop < len(self._chunks) - 1 and (
                self._buffered > self.buffer_events or len(self._chunks) - drop > MAX_CHUNKS
            ):
                self._buffered -= self._chunks[drop].size
                drop += 1
            del self._chunks[:drop]
            self._floor = self._chunks[0].start
        # A stream whose pattern matches none of the chunk's topics sleeps on;
        # it learns that it reached the head when its heartbeat wakes it.
        self._wake_streams(frozenset(text for text, topics in matched.items() if not topics))
        if chunk.end < head:
            self._wakeup.set()  # more to read: go on at once


_hub: StreamHub | None = None
_hub_lock = threading.Lock()


def get_hub() -> StreamHub:
    global _hub
    with _hub_lock:
        if _hub is None:
            config = settings.LOGGREGATOR
            _hub = StreamHub(poll_interval=config["STREAM_POLL_INTERVAL"], buffer_events=config["STREAM_BUFFER_EVENTS"])
        return _hub
