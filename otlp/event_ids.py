"""Event ids for OTLP log records: the same record exported twice is the same event.

OTLP has no idempotency key, so an exporter's retry re-sends identical bytes.
A record's id is its `log.record.uid` attribute when that is a UUID (or a
ULID, 128 bits as well); otherwise it is derived from everything that makes up
the record: the resource and its schema URL, the scope and its schema URL and
every field of the LogRecord, each part length-prefixed so that no two
different records hash the same input. The hash is SHA-256, truncated to a
version 8 UUID (RFC 9562 B.2 shows this name-based form); SHA-1 (uuid5) is
not used because its collisions can be forged.
"""

from __future__ import annotations

import hashlib
import uuid

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

RECORD_UID_ATTRIBUTE = "log.record.uid"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_VALUES = {character: value for value, character in enumerate(_CROCKFORD)}


# Plain SerializeToString(): OTLP's log messages have no map fields, so the
# encoding is already canonical (fields in number order); deterministic=True
# only sorts map entries, and costs four times as much.


def context_hasher(resource_logs: ResourceLogs, scope_logs: ScopeLogs):
    """A SHA-256 state over the resource and scope, to be copied for each of their records."""
    hasher = hashlib.sha256()
    for part in (
        resource_logs.resource.SerializeToString(),
        resource_logs.schema_url.encode(),
        scope_logs.scope.SerializeToString(),
        scope_logs.schema_url.encode(),
    ):
        _update(hasher, part)
    return hasher


def derived_event_id(context, record: LogRecord) -> uuid.UUID:
    """The id of `record` under the resource and scope hashed in `context` (see context_hasher)."""
    hasher = context.copy()
    _update(hasher, record.SerializeToString())
    digest = bytearray(hasher.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
    return uuid.UUID(bytes=bytes(digest))


def _update(hasher, part: bytes) -> None:
    hasher.update(len(part).to_bytes(8, "big"))
    hasher.update(part)


def parse_record_uid(value: str) -> uuid.UUID | None:
    """A `log.record.uid` as a UUID: any UUID spelling, or a 26-character ULID; None otherwise."""
    if len(value) == 26:
        return _parse_ulid(value)
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _parse_ulid(value: str) -> uuid.UUID | None:
    number = 0
    for character in value.upper():
        digit = _CROCKFORD_VALUES.get(character)
        if digit is None:
            return None
        number = number * 32 + digit
    if number >= 1 << 128:  # a ULID's first character is at most 7
        return None
    return uuid.UUID(int=number)
