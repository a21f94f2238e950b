"""ASGI entry point: what gunicorn serves (loggregator_site/gunicorn.conf.py) and `uvicorn` can run.

Live streams (/events/stream) run on the event loop under Django's ASGI
handler: an open stream holds no thread, so one process keeps many open.
Small valid publishes are answered on the event loop too
(events.publish_fast_path). Every other request goes to the WSGI application
(loggregator_site.wsgi, which also starts the in-process consumer) in a fixed
pool of threads (loggregator_site.threaded_wsgi), as under gunicorn's gthread
worker: each thread keeps its database connection and concurrent publishes
share commits.
(Django's own ASGI path would run each sync view in a new thread with a new
database connection.)
"""

import functools
import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loggregator_site.settings")
django.setup(set_prefix=False)

from django.urls import reverse  # noqa: E402  (needs the settings configured above)

from events.publish_fast_path import PublishFastPath  # noqa: E402
from loggregator_site.threaded_wsgi import threaded_wsgi  # noqa: E402
from loggregator_site.wsgi import application as wsgi_application  # noqa: E402


class StreamASGIHandler(ASGIHandler):
    """Django's ASGI handler without a thread of its own per request.

    Django runs a request's sync code (signal receivers, a sync view) in a
    thread it keeps until the response ends: for an endless stream, one idle
    thread per open stream. Here that code, brief for a stream (checks, where
    to start), runs in asgiref's one shared thread instead, which keeps its
    database connection; the stream itself runs on the event loop.
    """

    async def __call__(self, scope, receive, send):
        await self.handle(scope, receive, send)


stream_asgi = StreamASGIHandler()
# Small publishes that need no decision but their validation are served on
# the event loop (events.publish_fast_path); the rest by the WSGI application.
small_publishes_then_wsgi = PublishFastPath(threaded_wsgi(wsgi_application))


@functools.cache
def async_paths() -> frozenset[str]:
    # Resolved at the first request, like the URLconf under WSGI: loading it
    # at import would slow every worker's start.
    return frozenset({reverse("event-stream")})


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] in async_paths():
        await stream_asgi(scope, receive, send)
    else:
        await small_publishes_then_wsgi(scope, receive, send)
