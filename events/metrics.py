"""Prometheus metrics (GET /metrics), with prometheus-client.

Two kinds:
- What the database knows (events received, stored, dropped and pruned, the
  queue's depth and the age of its oldest batch) is read from the counters at
  scrape time by DatabaseCollector: exact, and the same from any process.
- What each process observes (HTTP responses, /publish duration and
  rejections, consumer batch duration and size) goes in process-local
  counters and histograms. Under gunicorn they live in prometheus-client's
  multiprocess mode: files in PROMETHEUS_MULTIPROC_DIR, summed at scrape time,
  so every worker and `run_consumer` sharing the directory is counted once and
  a restarted worker's counts stay (loggregator_site/gunicorn.conf.py cleans
  the directory at start-up).

No per-topic labels: publishers create topics at will, so their number is
unbounded. Labels are the endpoint (a URL pattern name: bounded by the URL
conf), the status code, and the rejection reason (a fixed list).
"""

from __future__ import annotations

import os

from django.db.models import Min
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from rest_framework.views import APIView

from events import counters
from events.auth import ApiKeyAuthentication, MetricsKeyRequired
from events.models import IntakeBatch

if multiproc_dir := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus-client writes there as soon as a metric exists, in any process (even `manage.py migrate`).
    os.makedirs(multiproc_dir, exist_ok=True)

HTTP_RESPONSES = Counter(
    "loggregator_http_responses", "HTTP responses, by endpoint (URL pattern name) and status.", ["endpoint", "status"]
)
PUBLISH_DURATION = Histogram(
    "loggregator_publish_duration_seconds",
    "Time to answer a publish request, by endpoint (publish, otlp_logs).",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PUBLISH_REJECTED = Counter(
    "loggregator_publish_rejected", "Publish requests refused, by endpoint and reason.", ["endpoint", "reason"]
)
CONSUMER_BATCH_DURATION = Histogram(
    "loggregator_consumer_batch_duration_seconds",
    "Time of one consumer transaction: claim, insert, count, dequeue.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_BATCH_EVENTS = Histogram(
    "loggregator_consumer_batch_events",
    "Events (duplicates included) stored or dropped by one consumer transaction.",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000),
)

# Publish responses that refuse the request, by status: the reason label.
REJECTION_REASONS = {
    400: "invalid",
    401: "unauthorized",
    403: "unauthorized",
    413: "too_large",
    415: "unsupported",
    429: "throttled",
    503: "backlog_full",
}


def observe_batch(seconds: float, events: int) -> None:
    """A consumer transaction that stored or dropped `events` took `seconds`."""
    CONSUMER_BATCH_DURATION.observe(seconds)
    CONSUMER_BATCH_EVENTS.observe(events)


def observe_response(endpoint: str, status: int) -> None:
    HTTP_RESPONSES.labels(endpoint, str(status)).inc()


def observe_publish(endpoint: str, status: int, seconds: float) -> None:
    PUBLISH_DURATION.labels(endpoint).observe(seconds)
    if reason := REJECTION_REASONS.get(status):
        PUBLISH_REJECTED.labels(endpoint, reason).inc()


class DatabaseCollector:
    """The counters and the queue, read from the database at each scrape."""

    def collect(self):
        totals = counters.read_totals()
        oldest = IntakeBatch.objects.aggregate(oldest=Min("accepted_at"))["oldest"]
        yield _counter("loggregator_events_received", "Events accepted (202), duplicates included.", totals.received)
        yield _counter("loggregator_events_stored", "Events stored: first copies.", totals.unique_processed)
        yield _counter(
            "loggregator_events_duplicates_dropped", "Later copies, counted and dropped.", totals.duplicate_dropped
        )
        yield _counter("loggregator_events_pruned", "Stored events deleted by retention.", totals.pruned)
        yield _gauge("loggregator_events_stored_now", "Events stored now (stored minus pruned).", totals.stored)
        yield _gauge("loggregator_queue_events", "Events accepted and not yet processed.", totals.queued)
        yield _gauge(
            "loggregator_queue_oldest_batch_age_seconds",
            "How long the oldest queued batch has waited; 0 when the queue is empty.",
            (timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _ThisProcess:
    """The default registry's collectors (this process's metrics, Python and process info)."""

    def collect(self):
        yield from REGISTRY.collect()


def exposition() -> bytes:
    """Every metric, in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return generate_latest(registry)


class MetricsView(APIView):
    """GET /metrics. Open unless LOGGREGATOR_PROTECT_METRICS asks for a key with the `read` scope."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [MetricsKeyRequired]
    schema = None  # not part of the API's OpenAPI description

    def get(self, request):
        return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
