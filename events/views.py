from __future__ import annotations

import time
from dataclasses import asdict
from urllib.parse import urlencode

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from events import counters, intake, page_body, pagination, query_openapi
from events.admission import admit_publisher
from events.apps import STARTED_AT
from events.auth import (
    ApiKeyAuthentication,
    PublishKeyRequired,
    PublishRateThrottle,
    ReadKeyRequired,
    ReadRateThrottle,
)
from events.openapi import PUBLISH_REQUEST
from events.parsers import PublishedEventsParser, read_events
from events.query import PARAMETERS as QUERY_PARAMETERS
from events.query import EventQuery, refuse_unknown_params
from events.responses import error_response, json_response
from events.serializers import (
    AcceptedSerializer,
    ErrorSerializer,
    EventPageSerializer,
    PublishErrorSerializer,
    StatsSerializer,
    TopicListSerializer,
)
from events.topic_patterns import TRAILING_SEGMENTS, InvalidTopicPattern, parse_pattern

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
        summary="Find events: a topic pattern, a time window, filters, either order",
        description=(
            "Unique events of the topics that `topic` names, page by page. Every filter is ANDed. "
            "`q=` and `payload.` filters are checked on the events of the topics and time window asked for: "
            "narrow those for speed. Follow `next` for the following page: it carries every filter (relative "
            "instants made absolute), stays valid while events keep arriving, and never repeats or skips one."
        ),
        parameters=query_openapi.EVENT_QUERY_PARAMETERS,
        responses={
            200: EventPageSerializer,
            400: OpenApiResponse(
                query_openapi.PARAMETER_ERROR, description="A bad parameter: named, with what is wrong."
            ),
            **READ_GUARD_RESPONSES,
        },
    )
    def get(self, request):
        refuse_unknown_params(request.query_params, known=(*QUERY_PARAMETERS, "limit", "cursor"))
        query = EventQuery.from_params(request.query_params)
        limit = pagination.parse_limit(request.query_params.get("limit"))
        # One more than asked tells whether another page follows.
        rows = query.page_rows(request.query_params.get("cursor"), limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        # Encoded here rather than by DRF's renderer: see events.page_body.
        body = page_body.render(
            {
                "topic": query.pattern.text,
                "filters": query.applied(),
                "events": page_body.items(rows),
                "next": _next_page_url(request, query, limit, page_body.position(rows[-1])) if more else None,
            }
        )
        return HttpResponse(body, content_type="application/json")


def _next_page_url(request, query: EventQuery, limit: int, last: pagination.Position) -> str:
    params = {**query.as_params(), "limit": limit, "cursor": last.encode()}
    return request.build_absolute_uri(request.path) + "?" + urlencode(params, doseq=True)


class TopicListView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ReadKeyRequired]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(
        summary="Known topics matching a pattern, with their counters",
        description="From the counters, not a scan of the events: every topic received at least once.",
        parameters=[query_openapi.TOPIC_PATTERN_PARAMETER],
        responses={
            200: TopicListSerializer,
            400: OpenApiResponse(query_openapi.PARAMETER_ERROR, description="A malformed pattern: says what is wrong."),
            **READ_GUARD_RESPONSES,
        },
    )
    def get(self, request):
        refuse_unknown_params(request.query_params, known=("pattern",), payload_paths=False)
        text = request.query_params.get("pattern", TRAILING_SEGMENTS)
        try:
            pattern = parse_pattern(text)
        except InvalidTopicPattern as exc:
            raise ValidationError({"pattern": str(exc)}) from None
        topics = [
            {"topic": topic, **asdict(counts)}
            for topic, counts in counters.per_topic().items()
            if pattern.matches(topic)
        ]
        return Response({"pattern": pattern.text, "topics": topics})


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
