from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from rest_framework.views import APIView

from events import intake
from events.auth import ApiKeyAuthentication, PublishKeyRequired, PublishRateThrottle
from events.backpressure import refuse_when_backlogged
from otlp.checks import check_events
from otlp.errors import status_exception_handler
from otlp.mapping import map_export
from otlp.openapi import LOGS_DESCRIPTION, LOGS_REQUEST, logs_responses
from otlp.parsers import OtlpJsonParser, OtlpProtobufParser
from otlp.renderers import MessageResponse, ProtobufJsonRenderer, ProtobufRenderer, SameEncodingAsRequest

# How many rejected records partial_success describes one by one.
REJECTIONS_DESCRIBED = 10


class LogsView(APIView):
    """OTLP/HTTP log export: the same guards and the same durable intake queue as /publish."""

    parser_classes = [OtlpProtobufParser, OtlpJsonParser]
    renderer_classes = [ProtobufRenderer, ProtobufJsonRenderer]
    content_negotiation_class = SameEncodingAsRequest
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [PublishKeyRequired]
    throttle_classes = [PublishRateThrottle]
    # No OPTIONS metadata: every answer here is a protobuf message.
    metadata_class = None

    def get_exception_handler(self):
        return status_exception_handler

    @extend_schema(
        summary="Export logs over OTLP/HTTP",
        tags=["otlp"],
        description=LOGS_DESCRIPTION,
        request=LOGS_REQUEST,
        # The encoding is the request's Content-Type; DRF's ?format= override is not used.
        parameters=[OpenApiParameter("format", exclude=True)],
        responses=logs_responses(
            {
                400: "The body does not decode (or its gzip is corrupt); nothing was kept.",
                401: "No API key, or an unknown one, while keys are configured.",
                403: "The API key lacks the `publish` scope.",
                413: "Body over LOGGREGATOR_OTLP_MAX_BODY_BYTES, compressed or decompressed.",
                415: "Neither application/x-protobuf nor application/json, or an unknown Content-Encoding.",
                429: "Over the publish rate limit; retry after Retry-After seconds.",
                503: "The backlog is over its limit: nothing was kept; retry after Retry-After seconds.",
            }
        ),
    )
    def post(self, request):
        refuse_when_backlogged()
        export = request.data
        if not isinstance(export, ExportLogsServiceRequest):  # an empty body is not parsed: no records
            export = ExportLogsServiceRequest()
        mapped = map_export(
            export, topic_attribute=settings.LOGGREGATOR["OTLP_TOPIC_ATTRIBUTE"], received_at=timezone.now()
        )
        events, failed_checks = check_events(mapped.events, mapped.places)
        if events:
            intake.enqueue(events)  # announces the committed work to the consumers
        return MessageResponse(export_response(mapped.rejections + failed_checks))


def export_response(rejections: list[str]) -> ExportLogsServiceResponse:
    response = ExportLogsServiceResponse()
    if rejections:
        described = "; ".join(rejections[:REJECTIONS_DESCRIBED])
        more = len(rejections) - REJECTIONS_DESCRIBED
        response.partial_success.rejected_log_records = len(rejections)
        response.partial_success.error_message = f"{len(rejections)} log records rejected: {described}" + (
            f"; and {more} more" if more > 0 else ""
        )
    return response
