"""The dedup constraint leads with event_id and replaces the (event_id) index.

An index of random UUIDs costs every batched insert the most of all the
event indexes; with event_id first, the unique index already finds an event
by its id alone. The new constraint is in place before the old one goes, so
(topic, event_id) is never unguarded. On SQLite each constraint change
rebuilds the table: expect this migration to take a while on a large one.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0006_store_commit_log"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(fields=("event_id", "topic"), name="event_unique_event_id_topic"),
        ),
        migrations.RemoveConstraint(
            model_name="event",
            name="event_unique_topic_event_id",
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="event_event_id",
        ),
    ]
