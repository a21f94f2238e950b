"""Read a Loggregator live stream (GET /events/stream): Server-Sent Events, resumed across disconnects.

`messages()` parses one response as the SSE specification says (fields,
comments, multi-line data); `EventStreamReader` keeps following a stream as a
browser's EventSource does: after a disconnect or the server's end it
reconnects with `Last-Event-ID`, so nothing is missed or repeated. The live
tail command and the tests read streams with it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests

from publisher.client import backoff_delay, parse_retry_after

CONNECT_TIMEOUT = 10.0
# The server sends a keep-alive every 15 s (by default) on a quiet stream:
# four missed in a row means the connection is dead; reconnect.
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class Message:
    """One dispatched message: `event` is its type ("message" when unnamed), `id` the last id seen."""

    event: str
    data: str
    id: str | None


@dataclass(frozen=True)
class Comment:
    text: str


def messages(chunks: Iterable[bytes]) -> Iterator[Message | Comment]:
    """The messages and comments of a response's body, as they arrive.

    A message with an id and nothing else (the stream's start, or the
    position reached) comes as Message("", "", id): it only moves the cursor.
    """
    last_id: str | None = None
    event, data, new_id = "", [], False
    for line in _lines(chunks):
        if not line:
            if data:
                yield Message(event or "message", "\n".join(data), last_id)
            elif new_id:
                yield Message("", "", last_id)  # an id alone: where to resume from
            event, data, new_id = "", [], False
            continue
        if line.startswith(":"):
            yield Comment(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            last_id, new_id = value, True
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r").decode()


class StreamRefused(requests.RequestException):
    """The server answered something other than a stream (a 4xx or 5xx)."""

    def __init__(self, response: requests.Response):
        self.status = response.status_code
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        super().__init__(f"{response.status_code}: {response.text[:500]}")

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


class EventStreamReader:
    """Follows /events/stream from `after`, reconnecting like EventSource, until close()."""

    def __init__(self, url: str, params: dict, *, after: str | None = None, api_key: str | None = None):
        self.url = url.rstrip("/") + "/events/stream"
        self.params = params
        self.last_id = after
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self._closed = threading.Event()
        self._rng = random.Random()
        self._response: requests.Response | None = None

    def follow(self, *, reconnect: bool = True) -> Iterator[Message | Comment]:
        """Every message and comment; with reconnect, across disconnects and server restarts."""
        attempt = 0
        while not self._closed.is_set():
            try:
                for item in self.once():
                    attempt = 0
                    yield item
            except requests.RequestException as exc:
                if self._closed.is_set():
                    return
                refused = isinstance(exc, StreamRefused)
                if not reconnect or (refused and not exc.retryable):
                    raise
                attempt += 1
                retry_after = exc.retry_after if refused else None
                self._closed.wait(backoff_delay(attempt, retry_after, base=0.2, cap=5.0, rng=self._rng))
                continue
            if not reconnect:
                return

    def once(self) -> Iterator[Message | Comment]:
        """One connection: its messages until the server ends it; `last_id` follows them."""
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
        with self.session.get(self.url, params=self.params, headers=headers, stream=True, timeout=timeout) as response:
            self._response = response
            if response.status_code != 200:
                raise StreamRefused(response)
            try:
                for item in messages(response.iter_content(chunk_size=None)):
                    if isinstance(item, Message) and item.id is not None:
                        self.last_id = item.id
                    yield item
            except Exception:
                if self._closed.is_set():
                    return  # close() from another thread cut the read short, however it failed
                raise

    def close(self) -> None:
        """Stop following; callable from another thread or a signal handler."""
        self._closed.set()
        if self._response is not None:
            self._response.close()
