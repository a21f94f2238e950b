"""Model fields of the events app."""

from django.db import models


class PayloadField(models.JSONField):
    """An event's payload: a JSONField without SQLite's JSON_VALID() check constraint.

    Every payload is validated as a JSON object before it is queued
    (events.validation, stricter than JSON_VALID), and events.store is the one
    writer of events. SQLite would parse each payload again under the write
    lock: ~15% of the cost of inserting a batch.
    """

    def db_check(self, connection):
        return None
