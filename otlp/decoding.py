"""OTLP/HTTP request bodies -> ExportLogsServiceRequest, from binary protobuf or the OTLP JSON mapping.

OTLP JSON is protobuf's JSON mapping with one exception: trace and span ids
are hex strings, not base64. They are turned into base64 before protobuf's own
json_format parses the rest, so both encodings decode to identical messages.
"""

from __future__ import annotations

import base64
import binascii

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from rest_framework.exceptions import ParseError


class MalformedExport(ParseError):
    """The body does not decode to an ExportLogsServiceRequest: 400, nothing is kept."""

    default_detail = "The body is not an OTLP ExportLogsServiceRequest."
    default_code = "malformed_export"


def decode_protobuf(body: bytes) -> ExportLogsServiceRequest:
    export = ExportLogsServiceRequest()
    try:
        export.ParseFromString(body)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise MalformedExport(f"The body is not a binary protobuf ExportLogsServiceRequest: {exc}") from None
    return export


def decode_json(body: bytes) -> ExportLogsServiceRequest:
    try:
        document = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise MalformedExport(f"Malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedExport("The JSON body must be an object: an ExportLogsServiceRequest.")
    _hex_ids_to_base64(document)
    try:
        return json_format.ParseDict(document, ExportLogsServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        raise MalformedExport(f"The JSON is not an OTLP ExportLogsServiceRequest: {exc}") from None


# Both spellings: receivers accept protobuf's field names besides lowerCamelCase.
_RESOURCE_LOGS = ("resourceLogs", "resource_logs")
_SCOPE_LOGS = ("scopeLogs", "scope_logs")
_LOG_RECORDS = ("logRecords", "log_records")
_IDS = ("traceId", "trace_id", "spanId", "span_id")


def _hex_ids_to_base64(document: dict) -> None:
    """Rewrite the hex trace and span ids of every log record in place, for json_format.

    Values of the wrong shape are left for json_format to refuse with its own message.
    """
    for r, resource_logs in _items(document, _RESOURCE_LOGS):
        for s, scope_logs in _items(resource_logs, _SCOPE_LOGS):
            for n, record in _items(scope_logs, _LOG_RECORDS):
                for key in _IDS:
                    value = record.get(key)
                    if not isinstance(value, str):
                        continue
                    try:
                        record[key] = base64.b64encode(bytes.fromhex(value)).decode()
                    except (ValueError, binascii.Error):
                        where = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}].{key}"
                        raise MalformedExport(f"`{where}` is not a hex string: {value[:100]!r}") from None


def _items(parent, keys: tuple[str, ...]):
    """The (index, object) pairs of the first list under one of `keys`, objects only."""
    if not isinstance(parent, dict):
        return []
    for key in keys:
        if isinstance(children := parent.get(key), list):
            return [(index, child) for index, child in enumerate(children) if isinstance(child, dict)]
    return []
