"""Reads a POST /publish body within the size limits and validates it in one pass."""

from __future__ import annotations

import zlib

from django.conf import settings
from rest_framework.parsers import BaseParser

from events.exceptions import PayloadTooLarge, UnsupportedContentEncoding
from events.validation import InvalidEvents, parse_events

_READ_CHUNK = 1024 * 1024


class PublishedEventsParser(BaseParser):
    """application/json body -> list of validated PublishedEvent.

    Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) would refuse a 5,000-event
    batch, so this parser enforces its own limit (LOGGREGATOR_MAX_BODY_BYTES)
    and never reads more than that into memory, compressed or not.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        config = settings.LOGGREGATOR
        body = read_body(stream, parser_context["request"].META, limit=config["MAX_BODY_BYTES"])
        return parse_events(body, max_events=config["MAX_BATCH_EVENTS"])


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
