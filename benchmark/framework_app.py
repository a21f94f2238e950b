"""The framework ceiling's server: Django itself, with a bare view that parses the JSON body.

The service's own settings (middleware included) with one view in place of
the aggregator: it reads the body, parses it with json.loads and answers 202.
No validation, no database. What a single-event /publish could reach if the
aggregator cost nothing beyond the framework it runs on.

gunicorn serves `benchmark.framework_app:asgi_application` (or `wsgi_application`) with
DJANGO_SETTINGS_MODULE=benchmark.framework_app.
"""

import json

from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from loggregator_site.settings import *  # noqa: F403  (the service's settings, one URLconf changed)
from loggregator_site.threaded_wsgi import threaded_wsgi

ROOT_URLCONF = __name__

# /stats answers too: the benchmark's readiness check polls it.
_STATS = {"received": 0, "unique_processed": 0, "duplicate_dropped": 0, "queued": 0, "topics": [], "uptime": 0}


@csrf_exempt
def publish(request):
    events = json.loads(request.body)
    return JsonResponse({"accepted": len(events) if isinstance(events, list) else 1}, status=202)


def stats(request):
    return JsonResponse(_STATS)


urlpatterns = [path("publish", publish), path("stats", stats)]

wsgi_application = get_wsgi_application()
# As loggregator_site.asgi serves every request but the stream: a pool of threads under the event loop.
asgi_application = threaded_wsgi(wsgi_application)
