from __future__ import annotations

import time

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from events import counters, intake, pagination
from events.admission import admit_publisher
from events.apps import STARTED_AT
from events.auth import (
    ApiKeyAuthentication,
    PublishKeyRequired,
    PublishRateThrottle,
    ReadKeyRequired,
    ReadRateThrottle,
)
from events.models import Event
from events.openapi import PUBLISH_REQUEST
from events.parsers import PublishedEventsParser, read_events
from events.responses import error_response, json_response
from events.serializers import (
    AcceptedSerializer,
    ErrorSerializer,
    EventPageSerializer,
    PublishErrorSerializer,
    StatsSerializer,
)
from events.validation import TOPIC_MAX_LENGTH, TOPIC_PATTERN, TOPIC_RULE, is_valid_topic

# What every endpoint may answer besides its own responses.
PUBLISH_GUARD_RESPONSES = {
    401: OpenApiResponse(ErrorSerializer, description="No API key, or an unknown one, while keys are configured."),
    403: OpenApiResponse(ErrorSerializer, description="The API key lacks the scope."),
    429: OpenApiResponse(ErrorSerializer, description="Over the rate limit; retry after Retry-After seconds."),
}
READ_GUARD_RESPONSES = {
    401: OpenApiResponse(ErrorSerializer, description="No valid API key while reads are protected."),
    403: OpenApiResponse(ErrorSerializer, description="The API key lacks the `read` scope."),
    429: OpenApiResponse(ErrorSerializer, description="Over the rate limit; retry after Retry-After seconds."),
}


# POST /publish without DRF's request cycle: a single-event publish spends its
# time on the event. DRF still describes it (the schema below) and answers its
# other methods (OPTIONS, 405); a POST goes straight to post() with Django's
# request and gets the same answers DRF would give, errors included
# (events.responses). (A comment, not a docstring: OPTIONS would show it.)
class PublishView(APIView):
    parser_classes = [PublishedEventsParser]
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [PublishKeyRequired]
    throttle_classes = [PublishRateThrottle]
    ALLOW = "POST, OPTIONS"

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        try:
            return self.post(request)
        except Exception as exc:
            return error_response(exc, self, allow=self.ALLOW)

    @extend_schema(
        summary="Publish one event or a batch",
        description=(
            "Validates the whole body, commits it to the durable intake queue and answers at once; "
            "processing is asynchronous. A batch is accepted whole or not at all. "
            "Send the same (topic, event_id) as often as you like: only the first copy is stored."
        ),
        request=PUBLISH_REQUEST,
        responses={
            202: AcceptedSerializer,
            400: OpenApiResponse(PublishErrorSerializer, description="Invalid event: names the item and field."),
            413: OpenApiResponse(ErrorSerializer, description="Body over the size limit."),
            415: OpenApiResponse(ErrorSerializer, description="Not application/json, or an unknown encoding."),
            503: OpenApiResponse(
                ErrorSerializer,
                description="The backlog is over its limit: nothing was accepted; retry after Retry-After seconds.",
            ),
            **PUBLISH_GUARD_RESPONSES,
        },
    )
    def post(self, request):
        admit_publisher(request, self)  # 401, 403, 429, 503: before the body is read
        events = read_events(request)  # 413, 415, 400: the whole body validated, or nothing accepted
        intake.enqueue(events)  # returns once committed: the 202 is a promise kept
        return json_response(b'{"accepted":%d}' % len(events), 202, allow=self.ALLOW)


class EventListView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ReadKeyRequired]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(
        summary="List a topic's unique events",
        parameters=[
            OpenApiParameter(
                "topic",
                {"type": "string", "minLength": 1, "maxLength": TOPIC_MAX_LENGTH, "pattern": TOPIC_PATTERN},
                required=True,
                description="The topic, exactly.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": pagination.MAX_LIMIT},
                description=f"Events per page, 1 to {pagination.MAX_LIMIT} (default {pagination.DEFAULT_LIMIT}).",
            ),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From the `next` URL of the previous page."),
        ],
        responses={
            200: EventPageSerializer,
            400: OpenApiResponse(description="Missing topic, bad limit or cursor."),
            **READ_GUARD_RESPONSES,
        },
    )
    def get(self, request):
        topic = request.query_params.get("topic")
        if not topic:
            raise ValidationError({"topic": "This query parameter is required."})
        if not is_valid_topic(topic):
            raise ValidationError({"topic": f"Invalid topic: it {TOPIC_RULE}."})
        limit = pagination.parse_limit(request.query_params.get("limit"))
        cursor = request.query_params.get("cursor")
        position = pagination.Position.decode(cursor) if cursor else None

        queryset = pagination.after(Event.objects.filter(topic=topic), position).order_by("timestamp", "id")
        rows = list(queryset.values_list("id", "event_id", "timestamp", "source", "payload")[: limit + 1])
        last = pagination.Position(rows[limit - 1][2], rows[limit - 1][0]) if len(rows) > limit else None
        events = [
            {"topic": topic, "event_id": event_id, "timestamp": timestamp, "source": source, "payload": payload}
            for _, event_id, timestamp, source, payload in rows[:limit]
        ]
        return Response({"topic": topic, "events": events, "next": pagination.next_url(request, last)})


class StatsView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ReadKeyRequired]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(summary="Counters of the whole service", responses={200: StatsSerializer, **READ_GUARD_RESPONSES})
    def get(self, request):
        totals = counters.read_totals()
        return Response(
            {
                "received": totals.received,
                "unique_processed": totals.unique_processed,
                "duplicate_dropped": totals.duplicate_dropped,
                "queued": totals.queued,
                "topics": totals.topics,
                "uptime": time.monotonic() - STARTED_AT,
            }
        )
