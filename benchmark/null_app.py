"""A WSGI application that does nothing: the load ceiling's server.

The benchmark serves it with the aggregator's own gunicorn settings and
sends it the workload's requests before the real run. It reads each body and
answers 202 at once, so what is measured is the load driver (the publisher's
client) and gunicorn on this machine, with no Django, parsing or database.

No Django here: gunicorn imports it as `benchmark.null_app`; served by the
production worker it goes through the same thread pool as the aggregator's
WSGI application (loggregator_site.threaded_wsgi, which imports no Django).
"""

from __future__ import annotations

from loggregator_site.threaded_wsgi import threaded_wsgi

JSON = [("Content-Type", "application/json")]
# /stats answers too: the benchmark's readiness check polls it.
STATS = b'{"received": 0, "unique_processed": 0, "duplicate_dropped": 0, "queued": 0, "topics": [], "uptime": 0}'


def wsgi_application(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        body = b'{"accepted": 0}'
        start_response("202 Accepted", [*JSON, ("Content-Length", str(len(body)))])
    else:
        body = STATS
        start_response("200 OK", [*JSON, ("Content-Length", str(len(body)))])
    return [body]


asgi_application = threaded_wsgi(wsgi_application)
