"""Count every HTTP response by endpoint and status, and time publish requests (events.metrics).

Publish rejections are derived from the response status, so the publish views
need no metrics code of their own.
"""

from __future__ import annotations

import time

from events import metrics

# Paths whose requests are publishes: the endpoint label of their duration and rejections.
PUBLISH_PATHS = {"/publish": "publish", "/v1/logs": "otlp_logs"}


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        # The URL pattern's name, never the path: one series per route, not per URL anyone sends.
        view_name = match.view_name if match else "unmatched"
        observe(view_name, request.path_info, response.status_code, time.perf_counter() - started)
        return response


def observe(view_name: str, path: str, status: int, seconds: float) -> None:
    """Count a response by endpoint and status; time a publish and count its refusal.

    For every request Django serves (above) and the publishes the event loop
    answers itself (events.publish_fast_path).
    """
    metrics.observe_response(view_name, status)
    if publish := PUBLISH_PATHS.get(path):
        metrics.observe_publish(publish, status, seconds)
