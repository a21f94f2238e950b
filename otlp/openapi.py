"""The OpenAPI description of POST /v1/logs: OTLP's messages, in their JSON form, and protobuf bytes.

A summary of the OTLP JSON encoding for /docs; the authority is the
opentelemetry-proto definition (ExportLogsServiceRequest), which the decoder
uses. Unknown fields are ignored, as OTLP asks of receivers.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

_UINT64 = {"type": "string", "pattern": "^[0-9]{1,19}$", "description": "Nanoseconds since the epoch, as a string."}
_VALUE = {
    "type": "object",
    "description": (
        "An OTLP AnyValue: one of stringValue, boolValue, intValue (a string), doubleValue, bytesValue (base64), "
        "arrayValue {values: [AnyValue]} or kvlistValue {values: [KeyValue]}."
    ),
    "properties": {
        "stringValue": {"type": "string"},
        "boolValue": {"type": "boolean"},
        "intValue": {"type": "string", "pattern": "^-?[0-9]{1,18}$"},
        "doubleValue": {"type": "number"},
    },
    "maxProperties": 1,
}
_ATTRIBUTES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"key": {"type": "string"}, "value": _VALUE},
        "required": ["key"],
    },
    "description": "Key-value pairs; a key may appear once.",
}
_LOG_RECORD = {
    "type": "object",
    "properties": {
        "timeUnixNano": _UINT64,
        "observedTimeUnixNano": _UINT64,
        "severityNumber": {"type": "integer", "minimum": 0, "maximum": 24},
        "severityText": {"type": "string"},
        "eventName": {"type": "string"},
        "body": _VALUE,
        "attributes": _ATTRIBUTES,
        "flags": {"type": "integer", "minimum": 0, "maximum": 4294967295},
        "traceId": {"type": "string", "pattern": "^([0-9a-fA-F]{32})?$", "description": "16 bytes in hex."},
        "spanId": {"type": "string", "pattern": "^([0-9a-fA-F]{16})?$", "description": "8 bytes in hex."},
    },
}
EXPORT_LOGS_REQUEST_JSON = {
    "type": "object",
    "description": "An OTLP ExportLogsServiceRequest in the OTLP JSON encoding (hex trace and span ids).",
    "properties": {
        "resourceLogs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "resource": {"type": "object", "properties": {"attributes": _ATTRIBUTES}},
                    "schemaUrl": {"type": "string"},
                    "scopeLogs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "scope": {
                                    "type": "object",
                                    "properties": {
                                        "name": {"type": "string"},
                                        "version": {"type": "string"},
                                        "attributes": _ATTRIBUTES,
                                    },
                                },
                                "schemaUrl": {"type": "string"},
                                "logRecords": {"type": "array", "items": _LOG_RECORD},
                            },
                        },
                    },
                },
            },
        }
    },
}
_EXPORT_LOGS_RESPONSE_JSON = {
    "type": "object",
    "properties": {
        "partialSuccess": {
            "type": "object",
            "description": "Present when records were rejected: how many, and why (the others were accepted).",
            "properties": {
                "rejectedLogRecords": {"type": "string", "pattern": "^[0-9]+$"},
                "errorMessage": {"type": "string"},
            },
        }
    },
}
_STATUS_JSON = {
    "type": "object",
    "description": "A google.rpc.Status.",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}

LOGS_DESCRIPTION = """\
The OTLP/HTTP logs endpoint: any OpenTelemetry SDK or Collector can export here (`application/x-protobuf` or the
OTLP JSON encoding, optionally `Content-Encoding: gzip`). The answer, in the request's encoding, comes once the
accepted records are in the durable intake queue; errors are a `google.rpc.Status`. Records that cannot be mapped
or fail the checks `/publish` applies are counted in `partialSuccess` with their place and reason; the others are
kept.

Each log record becomes one event:

- **topic**: the record's, else the resource's attribute named by `LOGGREGATOR_OTLP_TOPIC_ATTRIBUTE` (default
  `loggregator.topic`; an invalid topic rejects the record); else the resource's `service.name` with every character
  other than letters, digits, `_` and `.` made `_`, empty segments dropped, segments past the fifth joined to it
  with `_`, cut at 255 characters (`checkout-api.eu/v2` becomes `checkout_api.eu_v2`); else `otlp`.
- **event_id**: the `log.record.uid` attribute when it is a UUID or a ULID; else a version 8 UUID from SHA-256 over
  the resource, the scope and the whole record, so an exporter's retry is the same event and records that differ in
  anything are different events.
- **timestamp**: `time_unix_nano`, else `observed_time_unix_nano`, else the time of receipt.
- **source**: the resource's `service.instance.id`, else `host.name`, else `service.name`, else `otlp`.
- **payload**: `body` (as JSON; bytes in base64), `severity_text`, `severity_number`, `event_name`, `attributes`,
  `dropped_attributes_count`, `trace_id` and `span_id` in hex, `flags`, `time_unix_nano`,
  `observed_time_unix_nano` (each when set), `resource` (`attributes`...) and `scope` (`name`, `version`...).
"""

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

LOGS_REQUEST = {PROTOBUF: OpenApiTypes.BINARY, JSON: EXPORT_LOGS_REQUEST_JSON}


def _answers(description: str, json_schema: dict) -> dict:
    return {
        PROTOBUF: OpenApiResponse(OpenApiTypes.BINARY, description),
        JSON: OpenApiResponse(json_schema, description),
    }


def logs_responses(errors: dict[int, str]) -> dict:
    """200 and each error status, in both encodings (the answer's is the request's)."""
    responses = {}
    for media_type, response in _answers(
        "An ExportLogsServiceResponse, sent once the accepted records are in the durable intake queue.",
        _EXPORT_LOGS_RESPONSE_JSON,
    ).items():
        responses[(200, media_type)] = response
    for status, description in errors.items():
        for media_type, response in _answers(description, _STATUS_JSON).items():
            responses[(status, media_type)] = response
    return responses
