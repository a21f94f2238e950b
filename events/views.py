from __future__ import annotations

import time

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from events import background, counters, intake, pagination
from events.apps import STARTED_AT
from events.auth import (
    ApiKeyAuthentication,
    PublishKeyRequired,
    PublishRateThrottle,
    ReadKeyRequired,
    ReadRateThrottle,
)
from events.exceptions import QueueFull
from events.models import Event
from events.openapi import PUBLISH_REQUEST
from events.parsers import PublishedEventsParser
from events.serializers import (
    AcceptedSerializer,
    ErrorSerializer,
    EventPageSerializer,
    PublishErrorSerializer,
    StatsSerializer,
)
from events.validation import TOPIC_MAX_LENGTH, TOPIC_PATTERN, TOPIC_RULE, InvalidEvents, is_valid_topic

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


class PublishView(APIView):
    parser_classes = [PublishedEventsParser]
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [PublishKeyRequired]
    throttle_classes = [PublishRateThrottle]

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
        _refuse_when_backlogged()
        events = request.data
        if not isinstance(events, list):  # an empty body parses to {}
            raise InvalidEvents("The request body is empty: send one event or an array of events.")
        intake.enqueue(events)
        background.notify_new_work()
        return Response({"accepted": len(events)}, status=status.HTTP_202_ACCEPTED)


def _refuse_when_backlogged() -> None:
    """503 while the backlog is over its limit, before the body is even read.

    A soft limit: requests checked at the same moment may all pass, so the
    backlog can overshoot by what they carry.
    """
    config = settings.LOGGREGATOR
    limit = config["MAX_QUEUED_EVENTS"]
    if limit and (queued := counters.queued_total()) >= limit:
        raise QueueFull(queued=queued, limit=limit, retry_after=config["BACKPRESSURE_RETRY_AFTER"])


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
                "stored": totals.stored,
                "pruned": totals.pruned,
                "topics": totals.topics,
                "uptime": time.monotonic() - STARTED_AT,
            }
        )
