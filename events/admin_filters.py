"""The event changelist's filters, each answered from an index or the counters, never a scan of the events."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db import connection
from django.utils import timezone

from events.models import Event, Stats

# More sources than this are not listed; search finds any source exactly.
MAX_LISTED_SOURCES = 100


class _ExactValueFilter(admin.SimpleListFilter):
    """Events whose `parameter_name` column equals the chosen value (an indexed column)."""

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class TopicFilter(_ExactValueFilter):
    """Topics from the counters: a DISTINCT over millions of events would be slow."""

    title = "topic"
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        topics = Stats.objects.filter(unique_processed__gt=0).values_list("topic", flat=True).distinct()
        return [(topic, topic) for topic in sorted(set(topics))]


class SourceFilter(_ExactValueFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [(source, source) for source in distinct_sources(MAX_LISTED_SOURCES)]


class TimeWindowFilter(admin.SimpleListFilter):
    """The last minutes, hours or days: a range on the timeline index."""

    title = "time window"
    parameter_name = "within"
    WINDOWS = {
        "15m": ("Last 15 minutes", timedelta(minutes=15)),
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last 24 hours", timedelta(hours=24)),
        "7d": ("Last 7 days", timedelta(days=7)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request, queryset):
        if self.value() in self.WINDOWS:
            _, length = self.WINDOWS[self.value()]
            return queryset.filter(timestamp__gte=timezone.now() - length)
        return queryset


def distinct_sources(limit: int) -> list[str]:
    """The first `limit` sources in order, by a loose index scan: one index seek per source.

    SELECT DISTINCT would read every row (or every index entry); stepping
    from one source to the next smallest greater one reads one entry each.
    """
    table = connection.ops.quote_name(Event._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE sources(source, n) AS ("
            f" SELECT MIN(source), 1 FROM {table}"
            " UNION ALL"
            f" SELECT (SELECT MIN(source) FROM {table} WHERE source > sources.source), n + 1"
            " FROM sources WHERE source IS NOT NULL AND n < %s"
            ") SELECT source FROM sources WHERE source IS NOT NULL",
            [limit],
        )
        return [source for (source,) in cursor.fetchall()]
