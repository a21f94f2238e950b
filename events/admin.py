import json
import uuid

from django.contrib import admin
from django.db.models import Min, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.html import format_html

from events import counters
from events.admin_filters import SourceFilter, TimeWindowFilter, TopicFilter
from events.admin_paginator import LimitedCountPaginator
from events.models import ApiKey, Event, Stats
from explorer.links import explorer_url


class ReadOnlyAdmin(admin.ModelAdmin):
    """Events and counters change only through the write path, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Newest first; every view a person can reach reads an index range, never the whole table."""

    list_display = ["at", "topic", "event_id", "source"]
    list_filter = [TimeWindowFilter, TopicFilter, SourceFilter]
    search_fields = ["=event_id", "=source"]  # as get_search_results() answers them
    search_help_text = "An exact event_id, or an exact source."
    # The timeline index, walked backwards. Other orders would sort every matching row.
    ordering = ["-timestamp", "-id"]
    sortable_by = []
    paginator = LimitedCountPaginator
    show_full_result_count = False
    # "Show counts" counts each filter choice over all events.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 100
    actions = None
    fields = ["topic", "event_id", "at", "source", "indented_payload", "in_the_explorer"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        # Exact matches on indexed columns: the admin's own `=` lookups are
        # case-insensitive, which no index answers.
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(event_id=uuid.UUID(term)), False
        except ValueError:
            return queryset.filter(source=term), False

    @admin.display(description="timestamp")
    def at(self, event):
        return timestamp_text(event.timestamp)

    @admin.display(description="payload")
    def indented_payload(self, event):
        return format_html('<pre class="payload">{}</pre>', json.dumps(event.payload, indent=2, ensure_ascii=False))

    @admin.display(description="explorer")
    def in_the_explorer(self, event):
        return format_html('<a href="{}">Open this event in the explorer</a>', explorer_url(event))


def timestamp_text(timestamp) -> str:
    """To the microsecond, with the time zone: events a millisecond apart must read apart."""
    return timezone.localtime(timestamp).isoformat(sep=" ")


@admin.register(Stats)
class StatsAdmin(ReadOnlyAdmin):
    """One row per topic with its shards summed.

    The columns are named apart from the model's fields: for a name that is
    also a field, the changelist would show the field (one shard's count).
    """

    list_display = ["topic", "total_received", "total_unique_processed", "total_duplicate_dropped"]
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
                unique_sum=Subquery(shards.annotate(total=Sum("unique_processed")).values("total")),
                duplicate_sum=Subquery(shards.annotate(total=Sum("duplicate_dropped")).values("total")),
            )
        )

    def get_changelist_instance(self, request):
        # `received` is counted where publishes commit, which on a SQLite file is
        # the intake queue's database (events.counters): added to the page's rows.
        changelist = super().get_changelist_instance(request)
        received = {topic: counts.received for topic, counts in counters.per_topic().items()}
        for stats in changelist.result_list:
            stats.received_sum = received.get(stats.topic, 0)
        return changelist

    @admin.display(description="received")
    def total_received(self, stats):
        return stats.received_sum

    @admin.display(description="unique processed", ordering="unique_sum")
    def total_unique_processed(self, stats):
        return stats.unique_sum

    @admin.display(description="duplicate dropped", ordering="duplicate_sum")
    def total_duplicate_dropped(self, stats):
        return stats.duplicate_sum


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see keys and can revoke one (set its revocation time); keys are created with `manage.py api_keys`."""

    list_display = ["name", "prefix", "scopes", "created_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "key_hash", "scopes", "created_at"]
    fields = readonly_fields + ["revoked_at"]

    def has_add_permission(self, request):
        return False
