"""API errors: every one answers JSON with a `detail` that says what is wrong and where."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from events.validation import InvalidEvents


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class UnsupportedContentEncoding(APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "Unsupported Content-Encoding: send identity or gzip."
    default_code = "unsupported_content_encoding"


class QueueFull(APIException):
    """The backlog is over LOGGREGATOR_MAX_QUEUED_EVENTS: come back later, nothing was accepted."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Too many events are waiting to be processed; nothing was accepted. Retry later."
    default_code = "queue_full"

    def __init__(self, *, queued: int, limit: int, retry_after: int):
        super().__init__(
            f"{queued} events are waiting to be processed (limit {limit}); nothing was accepted. "
            f"Retry in {retry_after} s."
        )
        # DRF's exception handler turns `wait` into the Retry-After header.
        self.wait = retry_after


class TooManyStreams(APIException):
    """This process already serves LOGGREGATOR_STREAM_MAX_PER_PROCESS live streams."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "too_many_streams"

    def __init__(self, *, limit: int, retry_after: int):
        super().__init__(f"This server already serves {limit} live streams. Retry in {retry_after} s.")
        self.wait = retry_after


def exception_handler(exc, context):
    if isinstance(exc, InvalidEvents):
        # Nothing of the batch was accepted: say which item and field failed.
        return Response(
            {"detail": str(exc), "item": exc.item, "field": exc.field},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return drf_exception_handler(exc, context)
