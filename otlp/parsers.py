"""DRF parsers for OTLP/HTTP bodies: binary protobuf and OTLP JSON, gzip or not, within the size limit."""

from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import BaseParser

from events.parsers import read_body
from otlp.decoding import decode_json, decode_protobuf


def _read(stream, parser_context) -> bytes:
    return read_body(stream, parser_context["request"].META, limit=settings.LOGGREGATOR["OTLP_MAX_BODY_BYTES"])


class OtlpProtobufParser(BaseParser):
    media_type = "application/x-protobuf"

    def parse(self, stream, media_type=None, parser_context=None):
        return decode_protobuf(_read(stream, parser_context))


class OtlpJsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return decode_json(_read(stream, parser_context))
