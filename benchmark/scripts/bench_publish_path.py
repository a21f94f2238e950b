"""Time each stage of a single-event publish, in one thread: where a request's microseconds go.

    python benchmark/scripts/bench_publish_path.py [--requests N] [--database-url URL]

Sends N single-event bodies of the `single16` workload (default 2000) through
Django's WSGI handler into a fresh, migrated database (a temporary SQLite file
unless --database-url names one this may fill), each stored by the consumer
before the next (one intake row per transaction, as under a slow trickle), and
prints the median CPU time of this thread per request for: the whole request
(Django, the view, validation, the intake commit), the same with no consumer
run between requests, the consumer's transaction
for one row, admission (key, rate limit, backlog query), validation and the
intake commit alone, and the framework alone (Django's handler around a view
that only parses the body). No concurrency and no HTTP server: `manage.py
benchmark` measures those.
"""

import argparse
import io
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    from benchmark.standalone import setup_django

    scratch = setup_django(
        "publish-path",
        args.database_url,
        DEBUG="false",
        SECRET_KEY="publish-path-not-secret",
        ALLOWED_HOSTS="127.0.0.1",
    )
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.test import RequestFactory
    from django.urls import path, set_urlconf

    from benchmark import framework_app
    from benchmark.workloads import FULL, build_plan
    from events import intake, store
    from events.admission import admit_publisher
    from events.validation import parse_events

    call_command("migrate", verbosity=0)
    bodies = build_plan(FULL["single16"].with_events(args.requests * 4), seed=7).bodies
    handler = WSGIHandler()
    timings = defaultdict(list)
    clock = time.thread_time

    def request(body: bytes, path_info: str = "/publish") -> str:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path_info,
            "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }
        status = []
        b"".join(handler(environ, lambda code, headers: status.append(code)))
        return status[0]

    def timed(stage, function, *arguments, **keywords):
        started = clock()
        result = function(*arguments, **keywords)
        timings[stage].append(clock() - started)
        return result

    # Each publish is stored before the next, as by a consumer keeping up.
    for body in bodies[: args.requests]:
        status = timed("request, whole: Django + view + validation + intake commit", request, body)
        assert status.startswith("202"), status
        timed("consumer: one transaction storing one queued event", store.process_next_batch, max_events=5000)
    # The same without the consumer's transaction between requests: that work
    # evicts the caches the next request then refills, which the row above counts.
    for body in bodies[3 * args.requests : 4 * args.requests]:
        timed("request, whole, no consumer between requests", request, body)
    store.process_next_batch(max_events=len(bodies))
    max_events = settings.LOGGREGATOR["MAX_BATCH_EVENTS"]
    requests = RequestFactory(REMOTE_ADDR="127.0.0.1")
    for body in bodies[args.requests : 2 * args.requests]:
        timed("  admission: key, rate limit, backlog", admit_publisher, requests.post("/publish"))
        events = timed("  validation: parse_events", parse_events, body, max_events=max_events)
        timed("  intake commit: intake.enqueue", intake.enqueue, events)
        store.process_next_batch(max_events=5000)
    # The framework alone: the same handler and middleware around a view that only parses.
    framework_urls = [path("framework", framework_app.publish)]
    settings.ROOT_URLCONF = __name__
    globals()["urlpatterns"] = framework_urls
    set_urlconf(None)
    for body in bodies[2 * args.requests : 3 * args.requests]:
        timed("framework alone: Django + a view that parses the body", request, body, "/framework")

    width = max(map(len, timings))
    print(f"{'stage':<{width}}  µs per request (median CPU time of this thread)")
    for stage, seconds in timings.items():
        print(f"{stage:<{width}}  {statistics.median(seconds) * 1e6:>8.1f}")
    scratch.cleanup()


if __name__ == "__main__":
    main()
