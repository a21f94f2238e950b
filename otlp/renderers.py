"""DRF renderers for protobuf messages (responses and google.rpc.Status errors), in the request's encoding.

OTLP/HTTP answers in the content type of the request, so negotiation follows
Content-Type rather than Accept (SameEncodingAsRequest).
"""

from __future__ import annotations

from google.protobuf import json_format
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response


class ProtobufRenderer(BaseRenderer):
    media_type = "application/x-protobuf"
    format = "protobuf"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.SerializeToString()


class ProtobufJsonRenderer(BaseRenderer):
    """protobuf's JSON mapping, as OTLP JSON uses it (lowerCamelCase keys, 64-bit integers as strings)."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json_format.MessageToJson(data, indent=None).encode()


class SameEncodingAsRequest(DefaultContentNegotiation):
    """The renderer for the request's Content-Type; the first renderer (protobuf) for anything else."""

    def select_renderer(self, request, renderers, format_suffix=None):
        media_type = request.content_type.partition(";")[0].strip().lower()
        renderer = next((renderer for renderer in renderers if renderer.media_type == media_type), renderers[0])
        return renderer, renderer.media_type


class MessageResponse(Response):
    """A Response that keeps its Content-Type when the message encodes to no bytes (an all-defaults protobuf)."""

    @property
    def rendered_content(self):
        content = super().rendered_content
        if not content:  # DRF drops the header of an empty body
            self["Content-Type"] = self.accepted_renderer.media_type
        return content
