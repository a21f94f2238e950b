"""Which database holds what: on a SQLite file, the intake queue has a file of its own.

SQLite lets one transaction write to a file at a time. With the queue in the
event store's file, every publish waited for the consumer's transaction in
hand (tens of milliseconds for 5000 events; README, "The intake queue in a
file of its own"). In a second file (the `intake` database: IntakeBatch and
the `received` counters, events.counters), publishes commit beside the
consumer's inserts. The consumer reads the queue's file and writes the
store's; events.handoff keeps that exactly once across the two files.

PostgreSQL and in-memory SQLite keep everything in one database: there is no
`intake` alias and nothing is routed.
"""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

INTAKE_DATABASE = "intake"
# The models of the intake database: its Stats rows count only `received`.
INTAKE_MODELS = {"intakebatch", "stats"}


def intake_alias() -> str:
    """The database that holds the intake queue and counts what publishes receive."""
    return INTAKE_DATABASE if INTAKE_DATABASE in settings.DATABASES else DEFAULT_DB_ALIAS


def intake_has_own_database() -> bool:
    return intake_alias() != DEFAULT_DB_ALIAS


class IntakeRouter:
    def db_for_read(self, model, **hints):
        return intake_alias() if model._meta.label_lower == "events.intakebatch" else None

    db_for_write = db_for_read

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db != INTAKE_DATABASE:
            # The store's database has every table, the queue's included:
            # batches queued there before the queue had a file of its own are
            # still drained (events.handoff).
            return None
        return app_label == "events" and model_name in INTAKE_MODELS
