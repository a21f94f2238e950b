"""JSON answers of a view that skips DRF's request cycle, byte for byte as DRF renders them.

DRF wraps the request, negotiates, authenticates, throttles and renders a
Response for every call: for a single-event publish that costs more than
validating the event. A lean view answers with these instead; its errors still
go through the API's exception handler (events.exceptions), so their bodies
and headers are the ones every other endpoint sends.
"""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from events.auth import ApiKeyAuthentication
from events.exceptions import exception_handler


def json_response(body: bytes, status: int, *, allow: str) -> HttpResponse:
    """A response whose JSON body is already encoded; `allow` as DRF's Allow header."""
    response = HttpResponse(body, status=status, content_type="application/json")
    response["Allow"] = allow
    return response


def error_response(exc: Exception, view, *, allow: str) -> HttpResponse:
    """What DRF's APIView.handle_exception answers for `exc`; anything else is raised again (500)."""
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        # As DRF does: 401 with a challenge (the API key scheme always has one).
        exc.auth_header = ApiKeyAuthentication().authenticate_header(None)
    response = exception_handler(exc, {"view": view})
    if response is None:
        raise exc
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = JSONRenderer.media_type
    response.renderer_context = {}
    response.exception = True
    response["Allow"] = allow
    return response.render()
