from django.urls import path

from events import health, metrics, stream_views, views

urlpatterns = [
    path("publish", views.PublishView.as_view(), name="publish"),
    path("events", views.EventListView.as_view(), name="events"),
    path("topics", views.TopicListView.as_view(), name="topics"),
    path("events/stream", stream_views.EventStreamView.as_view(), name="event-stream"),
    path("stats", views.StatsView.as_view(), name="stats"),
    path("metrics", metrics.MetricsView.as_view(), name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
