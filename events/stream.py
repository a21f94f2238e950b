"""One live stream (GET /events/stream): Server-Sent Events from a cursor on.

A StreamSession decides what to send next; two drivers send it: an async
generator for ASGI servers (the production server: a stream holds no thread),
and a plain generator for runserver and other WSGI servers (a thread per
stream, fine for development).

What a stream sends, in the order events were stored (commit by commit, and
within one store transaction in GET /events order):
- `retry:` and the starting `id:` first, so a client that reconnects before
  any event arrived still resumes from where it started;
- each matching event once: `id: <cursor>` / `event: event` / `data: <JSON>`;
- `: keep-alive` after a quiet heartbeat interval, with the `id:` of the
  position reached, so a stream of a rare topic resumes without a long scan;
- `event: overflow` naming the cursor to resume from, then the end, when the
  client fell further behind than the configured lag;
- a last `id:` and the end when the server stops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import msgspec
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from events import commit_log, stream_cursor
from events.stream_cursor import Key
from events.stream_filters import StreamFilters
from events.stream_hub import AsyncWaker, CatchUp, StreamHub, ThreadWaker
from events.stream_messages import read_items

# next_step()'s answer when the next events must come from the store.
CATCH_UP = object()
RETRY_MILLISECONDS = 1000


class StreamSession:
    def __init__(
        self,
        hub: StreamHub,
        filters: StreamFilters,
        start: Key,
        *,
        heartbeat: float,
        max_lag: int,
        catch_up_events: int = 5000,
    ):
        self.hub = hub
        self.filters = filters
        self.key = start
        self.heartbeat = heartbeat
        self.max_lag = max_lag
        self.catch_up_events = catch_up_events
        self.finished = False
        self._opened = False
        self._sent_key = start
        # Where the next catch_up() stops (None: as far as it reads); the buffer says.
        self._catch_up_until: int | None = None
        self._last_sent = time.monotonic()
        # Falling behind means the distance to the newest stored event grows:
        # a stream that starts far back (a resume) is catching up, not behind.
        self._closest_lag: int | None = None

    @property
    def cursor(self) -> str:
        return stream_cursor.encode(self.key)

    def next_step(self) -> bytes | float | object | None:
        """Bytes to send; or seconds to wait for news; or CATCH_UP (call catch_up()); or None: the end.

        Touches no database.
        """
        if self.finished:
            return None
        if not self._opened:
            self._opened = True
            return self._sent(b"retry: %d\nid: %s\n\n" % (RETRY_MILLISECONDS, self.cursor.encode()))
        if self.hub.closing:
            self.finished = True
            return self._sent(b": the server is stopping\nid: %s\n\n" % self.cursor.encode())
        buffered = self.hub.read(self.filters, self.key)
        if not isinstance(buffered, CatchUp) and not buffered[0]:
            # Nothing for this stream up to there: it is not behind. (Streams
            # that nothing concerns sleep until their heartbeat, while the store
            # may move far ahead.)
            self.key = buffered[1]
        if self._fell_behind():
            self.finished = True
            data = msgspec.json.encode({"after": self.cursor, "max_lag": self.max_lag})
            return self._sent(b"id: %s\nevent: overflow\ndata: %s\n\n" % (self.cursor.encode(), data))
        if isinstance(buffered, CatchUp):
            self._catch_up_until = buffered.until
            return CATCH_UP
        found, self.key = buffered
        if messages := found if isinstance(found, bytes) else self._matching(found):
            return self._sent(messages)
        quiet = time.monotonic() - self._last_sent
        if quiet < self.heartbeat:
            return self.heartbeat - quiet
        keep_alive = b": keep-alive\n"
        if self.key != self._sent_key:
            keep_alive += b"id: %s\n" % self.cursor.encode()
        return self._sent(keep_alive + b"\n")

    def catch_up(self) -> bytes:
        """The next matching events from the store, after the cursor (queries the database)."""
        close_old_connections()
        key = self.key
        # A cursor inside a commit reads that commit again, from its position.
        after = key[0] if key == stream_cursor.after_commit(key[0]) else key[0] - 1
        commits = commit_log.commits_after(after, max_events=self.catch_up_events)
        until, self._catch_up_until = self._catch_up_until, None
        if until is not None:
            commits = [commit for commit in commits if commit.position <= until]
            if not commits:  # nothing left up to there (retention may have taken it)
                self.key = max(key, stream_cursor.after_commit(until))
                return b""
        if not commits:
            return b""
        topics = self.filters.pattern.matching({topic for commit in commits for topic in commit.topics})
        items = [item for topic_items in read_items(commits, topics).values() for item in topic_items if item.key > key]
        items.sort()
        self.key = stream_cursor.after_commit(commits[-1].position)
        return self._sent(self._matching(items)) if items else b""

    def _matching(self, items) -> bytes:
        if self.filters.topic_only:  # the items are of the pattern's topics: nothing else to test
            return b"".join(item.message for item in items)
        matches = self.filters.query.matches
        return b"".join(item.message for item in items if matches(item.event()))

    def _fell_behind(self) -> bool:
        """Whether the stored events this stream has yet to read grew by more than max_lag."""
        if self.hub.head is None:
            return False
        lag = max(0, self.hub.head - self.key[0])
        self._closest_lag = lag if self._closest_lag is None else min(self._closest_lag, lag)
        return lag - self._closest_lag > self.max_lag

    def _sent(self, data: bytes) -> bytes:
        self._last_sent = time.monotonic()
        self._sent_key = self.key
        return data


async def async_event_stream(session: StreamSession) -> AsyncIterator[bytes]:
    """The stream on an event loop: waiting for news holds no thread."""
    waker = AsyncWaker(asyncio.get_running_loop())
    catch_up = sync_to_async(session.catch_up, thread_sensitive=False)
    await sync_to_async(session.hub.subscribe, thread_sensitive=False)(waker, session.filters)
    try:
        while (step := session.next_step()) is not None:
            if step is CATCH_UP:
                step = await catch_up()
            if isinstance(step, bytes):
                if step:
                    yield step
            else:
                await waker.wait(step)
    finally:
        session.hub.unsubscribe(waker)


def event_stream(session: StreamSession) -> Iterator[bytes]:
    """The stream in a thread of its own (runserver and WSGI servers)."""
    waker = ThreadWaker()
    session.hub.subscribe(waker, session.filters)
    try:
        while (step := session.next_step()) is not None:
            if step is CATCH_UP:
                step = session.catch_up()
            if isinstance(step, bytes):
                if step:
                    yield step
            else:
                waker.wait(step)
    finally:
        session.hub.unsubscribe(waker)
