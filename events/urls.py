from django.urls import path

from events import stream_views, views

urlpatterns = [
    path("publish", views.PublishView.as_view(), name="publish"),
    path("events", views.EventListView.as_view(), name="events"),
    path("events/stream", stream_views.EventStreamView.as_view(), name="event-stream"),
    path("stats", views.StatsView.as_view(), name="stats"),
]
