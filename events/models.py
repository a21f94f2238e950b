from django.db import models


class Event(models.Model):
    """One unique processed event: the first copy of its (topic, event_id)."""

    topic = models.CharField(max_length=255)
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()
    source = models.CharField(max_length=255)
    payload = models.JSONField()

    class Meta:
        constraints = [
            # The dedup store: the database, not the code, decides what is a duplicate.
            models.UniqueConstraint(fields=["topic", "event_id"], name="event_unique_topic_event_id"),
        ]
        indexes = [
            # GET /events: one topic in timestamp order, ties in processing (id) order.
            models.Index(fields=["topic", "timestamp", "id"], name="event_topic_timeline"),
        ]

    def __str__(self):
        return f"{self.topic} {self.event_id}"


class Stats(models.Model):
    """Counters for one topic, split over a few shard rows.

    Publishers add to `received`, consumers to the other two; each writer picks
    a shard so concurrent writers rarely wait on the same row. Readers sum the
    shards: the totals never require scanning the events.
    """

    topic = models.CharField(max_length=255)
    shard = models.PositiveSmallIntegerField(default=0)
    received = models.BigIntegerField(default=0)
    unique_processed = models.BigIntegerField(default=0)
    duplicate_dropped = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "stats"
        constraints = [
            models.UniqueConstraint(fields=["topic", "shard"], name="stats_unique_topic_shard"),
        ]

    def __str__(self):
        return f"{self.topic} #{self.shard}"


class IntakeBatch(models.Model):
    """One accepted publish request waiting for the consumer: the durable queue.

    `body` holds the validated events in the compact intake encoding
    (events.intake); the row is deleted in the transaction that stores them.
    """

    accepted_at = models.DateTimeField()
    event_count = models.PositiveIntegerField()
    body = models.BinaryField()

    class Meta:
        verbose_name_plural = "intake batches"

    def __str__(self):
        return f"intake batch {self.pk} ({self.event_count} events)"
