import time

from django.apps import AppConfig

# When this process loaded the service; /stats reports uptime from it.
STARTED_AT = time.monotonic()


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"
