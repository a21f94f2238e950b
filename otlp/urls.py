from django.urls import path

from otlp import views

urlpatterns = [
    path("v1/logs", views.LogsView.as_view(), name="otlp-logs"),
]
