"""POST /publish on the event loop, for a request with nothing to decide but its events.

Most publishers send one small event per request. Through Django, such a
request costs a handoff to a WSGI thread and the whole request cycle
(middleware, URL resolution, the view), several times what validating the
event costs. Here the worker's event loop reads the body, validates it with
the view's own code (events.validation) and waits, without holding a thread,
while the intake writer commits it with every other publish waiting at that
moment (events.intake.enqueue_from_event_loop); the 202 goes out after the
commit, as from the view, with the view's headers.

Only a request that needs nothing else is served here: a small JSON body of
known length, no API key sent and none required, no rate limit, a backlog
known to be far under its limit, an allowed Host. Any other request, and any
whose body turns out invalid, goes on to Django's PublishView with its body
replayed: every refusal (400/401/403/413/415/429/503), OPTIONS and the schema
come from that one place.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import resolve
from rest_framework.utils.mediatypes import media_type_matches

from events import auth, backpressure, intake, metrics_middleware
from events.parsers import MEDIA_TYPE
from events.validation import parse_events
from events.views import PublishView
from loggregator_site.threaded_wsgi import read_body, replay_then

PATH = "/publish"
# Larger bodies go to the view: validating them would hold up the event
# loop, and everything else it serves, for milliseconds.
MAX_BODY_BYTES = 64 * 1024


class PublishFastPath:
    """ASGI application: serves the publishes described above itself, hands everything else to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if not (scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        length = _eligible_length(dict(scope["headers"]))
        if length is None:
            return await self.app(scope, receive, send)
        request = await read_body(receive, length)
        if request is None:  # the client left before sending it all
            return
        body, complete = request
        if not complete:  # longer than it said: the HTTP server refuses that before here
            return await self.app(scope, replay_then(body, receive), send)
        try:
            events = parse_events(body, max_events=settings.LOGGREGATOR["MAX_BATCH_EVENTS"])
        except Exception:  # the view answers it, with the error it names
            return await self.app(scope, replay_then(body, receive, more_body=False), send)
        try:
            await intake.enqueue_from_event_loop(events)
        except Exception:
            _count(500, started)
            raise  # the server logs it and answers 500, as Django would
        await _send_accepted(send, len(events))
        _count(202, started)


def _eligible_length(headers: dict[bytes, bytes]) -> int | None:
    """The body's length, if this request needs no decision but the validation of its events."""
    try:
        length = int(headers.get(b"content-length", b""))
    except ValueError:
        return None
    if not 0 < length <= min(MAX_BODY_BYTES, settings.LOGGREGATOR["MAX_BODY_BYTES"]):
        return None
    if b"authorization" in headers or b"transfer-encoding" in headers:
        return None
    if headers.get(b"content-encoding", b"identity").strip().lower() != b"identity":
        return None
    if not media_type_matches(MEDIA_TYPE, headers.get(b"content-type", b"").decode("latin-1")):
        return None
    if not _allowed_host(headers.get(b"host", b"").decode("latin-1")):
        return None
    if not _admitted_without_checks():
        return None
    return length


def _allowed_host(host: str) -> bool:
    # As HttpRequest.get_host(), for the settings _serves_any() allows.
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _admitted_without_checks() -> bool:
    """Whether events.admission would let any request publish now, known without a query."""
    config = settings.LOGGREGATOR
    if not _serves_any() or config["PUBLISH_RATE"] or not auth.keys_known_absent():
        return False
    limit = config["MAX_QUEUED_EVENTS"]
    return not limit or backpressure.backlog.known_under(limit)


@functools.cache
def _serves_any() -> bool:
    # Under other settings Django's middleware may redirect, or send other
    # headers than _HEADERS: leave every request to it then.
    return (
        not (settings.SECURE_SSL_REDIRECT or settings.SECURE_HSTS_SECONDS or settings.USE_X_FORWARDED_HOST)
        and settings.X_FRAME_OPTIONS == "DENY"
        and settings.SECURE_CONTENT_TYPE_NOSNIFF
        and settings.SECURE_REFERRER_POLICY == "same-origin"
        and settings.SECURE_CROSS_ORIGIN_OPENER_POLICY == "same-origin"
    )


# The view's answer, as Django's middleware completes it (tests compare the two).
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"allow", PublishView.ALLOW.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


async def _send_accepted(send, count: int) -> None:
    body = b'{"accepted":%d}' % count
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@functools.cache
def _view_name() -> str:
    return resolve(PATH).view_name


def _count(status: int, started: float) -> None:
    metrics_middleware.observe(_view_name(), PATH, status, time.perf_counter() - started)
