from django.db import models

from events.fields import PayloadField


class Event(models.Model):
    """One unique processed event: the first copy of its (topic, event_id)."""

    topic = models.CharField(max_length=255)
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()
    source = models.CharField(max_length=255)
    payload = PayloadField()
    # The intake batch (IntakeBatch.id, in order of acceptance) the stored copy
    # came in. Several consumers may store batches out of that order; a copy
    # from an earlier batch then replaces the stored one (events.store).
    # Null for events stored before it was recorded.
    intake_batch = models.BigIntegerField(null=True, editable=False)
    # The transaction that stored it, for the live tail (events.commit_log).
    # No foreign-key constraint: the store writes both rows in one
    # transaction, and a constraint would only cost a check per event.
    store_commit = models.ForeignKey(
        "StoreCommit",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # event_store_commit_topic serves it
        related_name="+",
    )

    class Meta:
        constraints = [
            # The dedup store: the database, not the code, decides what is a duplicate.
            # Led by event_id, so it also finds an event by its id alone: a separate
            # (event_id) index of random keys cost batched ingest more than any other.
            models.UniqueConstraint(fields=["event_id", "topic"], name="event_unique_event_id_topic"),
        ]
        indexes = [
            # GET /events: one topic in timestamp order, ties in processing (id) order.
            models.Index(fields=["topic", "timestamp", "id"], name="event_topic_timeline"),
            # Every topic (`>`, patterns matching many topics) in either order; the admin's newest first.
            models.Index(fields=["timestamp", "id"], name="event_timeline"),
            # source= across topics, and the admin's filter by source.
            models.Index(fields=["source", "timestamp", "id"], name="event_source_timeline"),
            # The live tail: one stored transaction's events of some topics.
            models.Index(fields=["store_commit", "topic"], name="event_store_commit_topic"),
        ]

    def __str__(self):
        return f"{self.topic} {self.event_id}"


class StoreCommit(models.Model):
    """One transaction of the write path that stored new events, numbered in commit order.

    `position` counts every event stored up to and including this commit. It
    is assigned as the transaction's last step under a lock held until commit
    (events.commit_log), so positions become visible in order: once a reader
    sees a position, every smaller one is committed too. The live tail's
    cursor is built on it; `topics` lets a stream skip commits it cannot match.
    """

    position = models.BigIntegerField(unique=True)
    event_count = models.PositiveIntegerField()
    # The distinct topics of the stored events, space-separated.
    topics = models.TextField()
    stored_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"commit {self.position} ({self.event_count} events)"


class Stats(models.Model):
    """Counters for one topic, split over a few shard rows.

    Publishers add to `received`, consumers to the other two; each writer picks
    a shard so concurrent writers rarely wait on the same row, and publishers
    never share one with consumers (events.counters). Readers sum the shards:
    the totals never require scanning the events.
    """

    topic = models.CharField(max_length=255)
    shard = models.PositiveSmallIntegerField(default=0)
    received = models.BigIntegerField(default=0)
    unique_processed = models.BigIntegerField(default=0)
    duplicate_dropped = models.BigIntegerField(default=0)
    # Stored events deleted by retention: what is stored now is unique_processed - pruned.
    pruned = models.BigIntegerField(default=0, db_default=0)  # db_default: raw inserts leave it out

    class Meta:
        verbose_name_plural = "stats"
        constraints = [
            models.UniqueConstraint(fields=["topic", "shard"], name="stats_unique_topic_shard"),
        ]

    def __str__(self):
        return f"{self.topic} #{self.shard}"


class PrunedEvent(models.Model):
    """A tombstone: the key of an event deleted by retention (events.tombstones).

    While it exists, a late copy of the event is still a duplicate. It is
    itself deleted once the event is older than its retention plus the dedup
    horizon.
    """

    topic = models.CharField(max_length=255)
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()

    class Meta:
        constraints = [
            # event_id first: the write path looks up a batch's ids.
            models.UniqueConstraint(fields=["event_id", "topic"], name="prunedevent_unique_event_id_topic"),
        ]
        indexes = [
            # Expiry: one topic's oldest tombstones.
            models.Index(fields=["topic", "timestamp"], name="prunedevent_topic_timestamp"),
        ]

    def __str__(self):
        return f"{self.topic} {self.event_id} (pruned)"


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


class StoredIntakeBatch(models.Model):
    """An intake batch whose events are stored, while the queue may still hold it (events.handoff).

    Only where the queue has a database of its own (events.routers): written
    in the transaction that stores the batch's events, dropped once the batch
    is off the queue for good.
    """

    id = models.BigIntegerField(primary_key=True)  # the IntakeBatch's

    def __str__(self):
        return f"stored intake batch {self.pk}"


class ApiKey(models.Model):
    """A secret a publisher or reader presents as `Authorization: Bearer <key>`.

    Only the SHA-256 of the key is stored. Keys are 256-bit random tokens, so
    a fast hash is enough (no salt or stretching: nothing to guess) and lets
    a request find its key with one indexed lookup. Managed with
    `manage.py api_keys`; revoked keys stay listed with their revocation time.
    """

    PUBLISH = "publish"
    READ = "read"
    SCOPES = (PUBLISH, READ)

    name = models.CharField(max_length=100, unique=True)
    # The key's first characters, to recognise it in lists and logs.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    # Space-separated subset of SCOPES.
    scopes = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes.split()
