import time

from django.apps import AppConfig

# When this process loaded the service; /stats reports uptime from it.
STARTED_AT = time.monotonic()


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from events.auth import forget_keys_configured
        from events.models import ApiKey

        # Keys changed in this process (the admin, tests) take effect at once;
        # other processes notice within events.auth.KEYS_CONFIGURED_TTL.
        for signal in (post_save, post_delete):
            signal.connect(lambda **kwargs: forget_keys_configured(), sender=ApiKey, weak=False)
