"""WSGI entry point for runserver and gunicorn.

Each web process also starts the in-process consumer thread unless dedicated
`run_consumer` processes are configured (LOGGREGATOR_INPROCESS_CONSUMER=false),
and, when a retention is configured, the pruning thread.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loggregator_site.settings")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (needs the settings configured above)

if settings.LOGGREGATOR["INPROCESS_CONSUMER"]:
    from events.background import start_consumer_thread

    start_consumer_thread()

from events.pruner import start_pruning_thread  # noqa: E402

start_pruning_thread()  # only when a retention is configured
