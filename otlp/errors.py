"""OTLP errors: every 4xx and 5xx body is a google.rpc.Status, as the OTLP/HTTP specification asks.

The status codes and headers (Retry-After on 429 and 503, WWW-Authenticate on
401) are the API's usual ones (events.exceptions); only the body changes.
"""

from __future__ import annotations

from google.rpc import code_pb2
from google.rpc.status_pb2 import Status

from events.exceptions import exception_handler
from events.validation import InvalidEvents

_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def status_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, InvalidEvents):  # a corrupt gzip body
        message = str(exc)
    elif isinstance(response.data, dict) and "detail" in response.data:
        message = str(response.data["detail"])
    else:
        message = str(response.data)
    response.data = Status(code=_GRPC_CODES.get(response.status_code, code_pb2.UNKNOWN), message=message)
    return response
