"""GET /events/stream: the live tail, as Server-Sent Events (events.stream)."""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from events import commit_log, stream_cursor
from events.auth import ApiKeyAuthentication, ReadKeyRequired, ReadRateThrottle
from events.exceptions import TooManyStreams
from events.serializers import ErrorSerializer
from events.stream import StreamSession, async_event_stream, event_stream
from events.stream_cursor import Key
from events.stream_filters import StreamFilters, parse_stream_filters
from events.stream_hub import get_hub
from events.views import READ_GUARD_RESPONSES


class EventStreamView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ReadKeyRequired]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(
        summary="Follow matching events as they are stored (Server-Sent Events)",
        description=(
            "Takes the filters of `GET /events` (`topic` pattern, `source`, `q`, `payload.…`). Sends each matching "
            "event once as `id: <cursor>` / `event: event` / `data: <event JSON>`, in the order events are stored "
            "(within one store transaction, in `GET /events` order), and `: keep-alive` when quiet. Reconnect with "
            "`Last-Event-ID` (browsers do) or `after=<cursor>` to get every matching event stored after that one. "
            "Ends with `event: overflow` and the cursor to resume from if the client falls too far behind."
        ),
        parameters=[
            OpenApiParameter("topic", OpenApiTypes.STR, required=True, description="A topic or topic pattern."),
            OpenApiParameter("after", OpenApiTypes.STR, description="Resume after this cursor (an `id:` sent)."),
            OpenApiParameter(
                "since",
                OpenApiTypes.STR,
                description="Start with the events stored since this instant (RFC 3339, or `15m`, `2h`...).",
            ),
            OpenApiParameter("Last-Event-ID", OpenApiTypes.STR, OpenApiParameter.HEADER, description="As `after`."),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="An endless event stream."),
            400: OpenApiResponse(ErrorSerializer, description="A bad filter or cursor: names the parameter."),
            503: OpenApiResponse(ErrorSerializer, description="Too many open streams; retry after Retry-After."),
            **READ_GUARD_RESPONSES,
        },
    )
    def get(self, request):
        config = settings.LOGGREGATOR
        filters = parse_stream_filters(request.query_params)
        hub = get_hub()
        if hub.stream_count >= config["STREAM_MAX_PER_PROCESS"]:
            raise TooManyStreams(limit=config["STREAM_MAX_PER_PROCESS"], retry_after=config["STREAM_RETRY_AFTER"])
        session = StreamSession(
            hub,
            filters,
            _start(request, filters),
            heartbeat=config["STREAM_HEARTBEAT"],
            max_lag=config["STREAM_MAX_LAG"],
        )
        asynchronous = isinstance(request._request, ASGIRequest)
        body = async_event_stream(session) if asynchronous else event_stream(session)
        response = StreamingHttpResponse(body, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        # nginx and other proxies: pass each message on at once.
        response["X-Accel-Buffering"] = "no"
        return response


def _start(request, filters: StreamFilters) -> Key:
    """Where the stream starts: after the client's cursor, at `since`, or at the newest stored event."""
    header = request.headers.get("Last-Event-ID")
    parameter, text = ("Last-Event-ID", header) if header else ("after", request.query_params.get("after"))
    head = commit_log.head()
    if text:
        key = stream_cursor.decode(text, parameter)
        if key[0] > head:
            raise ValidationError({parameter: "This cursor is ahead of every stored event: it is from another store."})
        return key
    if filters.since is not None:
        return stream_cursor.after_commit(commit_log.position_before(filters.since))
    return stream_cursor.after_commit(head)
