"""Reads a POST /publish body within the size limits and validates it in one pass."""

from __future__ import annotations

import zlib

from django.conf import settings
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.utils.mediatypes import media_type_matches

from events.exceptions import PayloadTooLarge, UnsupportedContentEncoding
from events.validation import InvalidEvents, PublishedEvent, parse_events

MEDIA_TYPE = "application/json"
_READ_CHUNK = 1024 * 1024


def read_events(request) -> list[PublishedEvent]:
    """The validated events of a publish request (a Django HttpRequest), or 413, 415 or 400.

    The same answers as DRF's parsing of the body with PublishedEventsParser:
    a body of length 0 is empty whatever its type; any other body must be JSON.
    """
    meta = request.META
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length == 0:
        raise InvalidEvents("The request body is empty: send one event or an array of events.")
    content_type = meta.get("CONTENT_TYPE", "")
    if not media_type_matches(MEDIA_TYPE, content_type):
        raise UnsupportedMediaType(content_type)
    return read_published_events(request, meta)


def read_published_events(stream, meta) -> list[PublishedEvent]:
    """Read, decompress and validate a JSON publish body from `stream`; never more than the limit in memory.

    Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) would refuse a 5,000-event
    batch, so the limit here is LOGGREGATOR_MAX_BODY_BYTES, compressed or not.
    """
    config = settings.LOGGREGATOR
    body = read_body(stream, meta, limit=config["MAX_BODY_BYTES"])
    return parse_events(body, max_events=config["MAX_BATCH_EVENTS"])


class PublishedEventsParser(BaseParser):
    """application/json body -> list of validated PublishedEvent, for DRF (the schema, OPTIONS)."""

    media_type = MEDIA_TYPE

    def parse(self, stream, media_type=None, parser_context=None):
        return read_published_events(stream, parser_context["request"].META)


def read_body(stream, meta, *, limit: int) -> bytes:
    """The request body, gunzipped if it says so, refused (413) once over `limit` bytes either way."""
    encoding = meta.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedContentEncoding()
    if int(meta.get("CONTENT_LENGTH") or 0) > limit:
        raise PayloadTooLarge(f"The request body is larger than the {limit}-byte limit.")
    body = _read_at_most(stream, limit)
    if encoding == "gzip":
        body = _gunzip_at_most(body, limit)
    return body


def _read_at_most(stream, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := stream.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than the {limit}-byte limit.")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip_at_most(body: bytes, limit: int) -> bytes:
    # Decompress at most limit + 1 bytes, so a gzip bomb costs nothing.
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidEvents(f"The gzip body is corrupt: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(f"The decompressed request body is larger than the {limit}-byte limit.")
    if not decompressor.eof:
        raise InvalidEvents("The gzip body is truncated.")
    return data
