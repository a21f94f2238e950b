from django.contrib import admin
from django.db.models import Min, OuterRef, Subquery, Sum

from events.models import ApiKey, Event, Stats


class ReadOnlyAdmin(admin.ModelAdmin):
    """Events and counters change only through the write path, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TopicFilter(admin.SimpleListFilter):
    """Topics from the counters: a DISTINCT over millions of events would be slow."""

    title = "topic"
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        topics = Stats.objects.filter(unique_processed__gt=0).values_list("topic", flat=True).distinct()
        return [(topic, topic) for topic in sorted(set(topics))]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(topic=self.value())
        return queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "topic", "event_id", "source"]
    list_filter = [TopicFilter, "timestamp"]
    search_fields = ["=event_id", "source"]
    ordering = ["-timestamp", "-id"]
    date_hierarchy = "timestamp"
    # Counting a million rows on every page is the slow part of a changelist.
    show_full_result_count = False
    list_per_page = 100


@admin.register(Stats)
class StatsAdmin(ReadOnlyAdmin):
    list_display = ["topic", "received", "unique_processed", "duplicate_dropped"]
    ordering = ["topic"]

    def get_queryset(self, request):
        # One row per topic (its first shard row) carrying the sums of all its shards.
        first_rows = Stats.objects.values("topic").annotate(first=Min("id")).values("first")
        shards = Stats.objects.filter(topic=OuterRef("topic")).values("topic")
        return (
            super()
            .get_queryset(request)
            .filter(id__in=first_rows)
            .annotate(
                received_sum=Subquery(shards.annotate(total=Sum("received")).values("total")),
                unique_sum=Subquery(shards.annotate(total=Sum("unique_processed")).values("total")),
                duplicate_sum=Subquery(shards.annotate(total=Sum("duplicate_dropped")).values("total")),
            )
        )

    @admin.display(ordering="received_sum")
    def received(self, stats):
        return stats.received_sum

    @admin.display(ordering="unique_sum")
    def unique_processed(self, stats):
        return stats.unique_sum

    @admin.display(ordering="duplicate_sum")
    def duplicate_dropped(self, stats):
        return stats.duplicate_sum


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see keys and can revoke one (set its revocation time); keys are created with `manage.py api_keys`."""

    list_display = ["name", "prefix", "scopes", "created_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "key_hash", "scopes", "created_at"]
    fields = readonly_fields + ["revoked_at"]

    def has_add_permission(self, request):
        return False
