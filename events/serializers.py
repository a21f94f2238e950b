"""Response shapes, for the OpenAPI schema and for the small responses.

GET /events builds its items as plain dicts (see views): a serializer per
event would cost more than the query on a 10,000-event page.
"""

from rest_framework import serializers


class AcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="How many events were committed to the queue.")


class PublishErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What is wrong, and where.")
    item = serializers.IntegerField(allow_null=True, help_text="Index of the offending event in the batch.")
    field = serializers.CharField(allow_null=True, help_text="The offending field of that event.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class EventSerializer(serializers.Serializer):
    topic = serializers.CharField()
    event_id = serializers.UUIDField()
    timestamp = serializers.DateTimeField(help_text="UTC.")
    source = serializers.CharField()
    payload = serializers.JSONField()


class AppliedFiltersSerializer(serializers.Serializer):
    topic = serializers.CharField(help_text="The topic or topic pattern.")
    order = serializers.ChoiceField(choices=["asc", "desc"])
    since = serializers.DateTimeField(required=False, help_text="Inclusive; a duration is resolved to an instant.")
    until = serializers.DateTimeField(required=False, help_text="Exclusive; a duration is resolved to an instant.")
    source = serializers.ListField(child=serializers.CharField(), required=False, help_text="Any of these.")
    q = serializers.CharField(required=False, help_text="Case-insensitive text in the payload or source.")
    payload = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="Payload path (without `payload.`) and value."
    )


class EventPageSerializer(serializers.Serializer):
    topic = serializers.CharField(help_text="The topic or topic pattern asked for.")
    filters = AppliedFiltersSerializer(help_text="The filters applied, only those given.")
    events = EventSerializer(
        many=True, help_text="In timestamp order (newest first with order=desc); ties in processing order."
    )
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")


class TopicCountsSerializer(serializers.Serializer):
    topic = serializers.CharField()
    received = serializers.IntegerField(help_text="Events accepted (202), duplicates included.")
    unique_processed = serializers.IntegerField(help_text="Events stored.")
    duplicate_dropped = serializers.IntegerField(help_text="Later copies, counted and dropped.")


class TopicListSerializer(serializers.Serializer):
    pattern = serializers.CharField()
    topics = TopicCountsSerializer(many=True, help_text="Sorted by topic.")


class StatsSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Events accepted (202), duplicates included.")
    unique_processed = serializers.IntegerField(help_text="Events stored: first copies of (topic, event_id).")
    duplicate_dropped = serializers.IntegerField(help_text="Later copies, counted and dropped.")
    queued = serializers.IntegerField(help_text="Accepted, not yet processed.")
    stored = serializers.IntegerField(help_text="Events stored now: unique_processed minus pruned.")
    pruned = serializers.IntegerField(help_text="Stored events deleted by retention.")
    topics = serializers.ListField(child=serializers.CharField(), help_text="Topics with stored events, sorted.")
    uptime = serializers.FloatField(help_text="Seconds since this server process started.")
