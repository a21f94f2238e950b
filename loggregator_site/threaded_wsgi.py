"""A WSGI application served from a pool of threads under an ASGI event loop, in one round trip per request.

a2wsgi's WSGIMiddleware, which this builds on, makes the worker thread wait for
the event loop at every step of a request: to receive the body, to start the
response, for each chunk and for its end (`run_coroutine_threadsafe(...)
.result()`, five hops for a small publish). Each hop is a thread switch and a
wake-up of the loop; for a 400-byte publish they cost more than Django's own
work and halved what a worker could answer.

Here the loop reads a request body of up to `request_buffer` bytes before the
app runs (a slow client holds no thread meanwhile), the thread collects a
response of up to `response_buffer` bytes, and the loop sends it once the app
has returned: one handoff to the thread and one back. Memory stays bounded by
the two limits: a body declared longer is streamed to the app as a2wsgi does,
so that it can refuse it from its length alone (413); a chunked one that turns
out longer is streamed too, what was read first included; and a response that
outgrows the buffer is sent as it is produced, one hop per chunk, each waiting
until the connection takes it (the client's pace, as under a2wsgi).

A chunked request body that fits in the buffer gets the CONTENT_LENGTH it
turned out to have (as waitress does), so Django reads it; a longer one reaches
the app without a length, as under any WSGI server, and Django reads it as empty.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
import os
import sys

from a2wsgi.wsgi import Body, WSGIMiddleware, WSGIResponder, build_environ

REQUEST_BUFFER_BYTES = 1024 * 1024
RESPONSE_BUFFER_BYTES = 1024 * 1024


def threaded_wsgi(app) -> ThreadedWSGI:
    """`app` served by a pool of gunicorn's --threads threads (loggregator_site.asgi_worker passes them on)."""
    return ThreadedWSGI(app, workers=int(os.environ.get("GUNICORN_THREADS", "8")))


class ThreadedWSGI(WSGIMiddleware):
    """ASGI application running the WSGI `app` in a pool of `workers` threads (module docstring)."""

    def __init__(
        self,
        app,
        workers: int,
        *,
        request_buffer: int = REQUEST_BUFFER_BYTES,
        response_buffer: int = RESPONSE_BUFFER_BYTES,
    ):
        super().__init__(app, workers=workers)
        self.request_buffer = request_buffer
        self.response_buffer = response_buffer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # lifespan (and websocket, refused) as a2wsgi answers them
            return await super().__call__(scope, receive, send)
        responder = BufferedResponder(self.app, self.executor, self.response_buffer)
        await responder(scope, receive, send, self.request_buffer)


async def read_body(receive, limit: int) -> tuple[bytes, bool] | None:
    """The request body, or its first part once over `limit` bytes, and whether it is all of it.

    None when the client disconnected before the body was complete: there is
    nothing to answer, and the app never sees a truncated body.
    """
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


class BufferedResponder(WSGIResponder):
    """One request: a2wsgi's start_response and app call, with the body read first and the response buffered."""

    def __init__(self, app, executor, response_buffer: int):
        super().__init__(app, executor, send_queue_size=1)
        self.response_buffer = response_buffer
        self.buffered: list[dict] = []
        self.buffered_bytes = 0
        self.streaming = False  # the response outgrew the buffer: what follows is sent as it comes
        self.asgi_send = None

    async def __call__(self, scope, receive, send, request_buffer: int) -> None:
        environ = build_environ(scope, None)
        if _declared_length(environ) > request_buffer:
            # Streamed as it comes: the app may refuse it (413) from its length alone.
            environ["wsgi.input"] = Body(self.loop, receive)
        else:
            request = await read_body(receive, request_buffer)
            if request is None:
                return
            body, complete = request
            if complete:
                # io.BytesIO has all of PEP 3333's wsgi.input methods (read, readline, readlines, iteration).
                environ["wsgi.input"] = io.BytesIO(body)
                environ.setdefault("CONTENT_LENGTH", str(len(body)))  # chunked: the length it turned out to have
            else:  # chunked, and longer than the buffer
                environ["wsgi.input"] = Body(self.loop, replay_then(body, receive))
        self.asgi_send = send
        run = functools.partial(contextvars.copy_context().run, self.wsgi)
        # An exception of the app's propagates: the server answers 500 if nothing was sent yet.
        await self.loop.run_in_executor(self.executor, run, environ, self.start_response)
        for message in self.buffered:
            await send(message)

    def start_response(self, status, response_headers, exc_info=None):
        if exc_info is not None:
            if self.streaming:  # headers already sent: PEP 3333 says re-raise
                raise exc_info[1].with_traceback(exc_info[2])
            # Nothing sent yet: the app's error response replaces what it had started.
            self.buffered.clear()
            self.buffered_bytes = 0
            self.response_started = False
        return super().start_response(status, response_headers)

    def send(self, message) -> None:
        """Called in the worker thread for the response's start and each chunk."""
        if self.streaming:
            self._send_from_loop([message])
            return
        self.buffered.append(message)
        self.buffered_bytes += len(message.get("body", b""))
        if self.buffered_bytes > self.response_buffer:
            messages, self.buffered = self.buffered, []
            self.streaming = True
            self._send_from_loop(messages)

    def _send_from_loop(self, messages: list[dict]) -> None:
        asyncio.run_coroutine_threadsafe(_send_all(self.asgi_send, messages), self.loop).result()


async def _send_all(send, messages: list[dict]) -> None:
    for message in messages:
        await send(message)


def _declared_length(environ) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:  # the server refuses such a request before it gets here; let the app see it if not
        return sys.maxsize


def replay_then(first: bytes, receive, *, more_body: bool = True):
    """An ASGI receive that returns `first` as the start of the body, then what `receive` returns.

    Without `more_body`, `first` is the whole body.
    """
    pending = [{"type": "http.request", "body": first, "more_body": more_body}]

    async def replaying_receive():
        return pending.pop() if pending else await receive()

    return replaying_receive
