"""OTLP export requests for the tests, built with opentelemetry-proto's own messages."""

from __future__ import annotations

import base64

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

# 2026-05-01T12:00:00.123456789Z
TIME_UNIX_NANO = 1_777_636_800_123_456_789
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def value(python) -> AnyValue:
    """A Python value as an OTLP AnyValue."""
    if isinstance(python, AnyValue):
        return python
    if isinstance(python, bool):
        return AnyValue(bool_value=python)
    if isinstance(python, int):
        return AnyValue(int_value=python)
    if isinstance(python, float):
        return AnyValue(double_value=python)
    if isinstance(python, bytes):
        return AnyValue(bytes_value=python)
    if isinstance(python, list):
        return AnyValue(array_value={"values": [value(item) for item in python]})
    if isinstance(python, dict):
        return AnyValue(kvlist_value={"values": attributes(python)})
    return AnyValue(string_value=python)


def attributes(mapping: dict) -> list[KeyValue]:
    return [KeyValue(key=key, value=value(item)) for key, item in mapping.items()]


def record(body="something happened", *, time_unix_nano=TIME_UNIX_NANO, **fields) -> LogRecord:
    """A LogRecord; `attributes` may be a dict."""
    if isinstance(fields.get("attributes"), dict):
        fields["attributes"] = attributes(fields["attributes"])
    return LogRecord(body=value(body), time_unix_nano=time_unix_nano, **fields)


def export(*records: LogRecord, resource: dict | None = None, scope_name="tests", scope_version="1.0"):
    """One resource and one scope holding `records`."""
    resource = {"service.name": "checkout", "service.instance.id": "checkout-1"} if resource is None else resource
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(attributes(resource))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = scope_name
    scope_logs.scope.version = scope_version
    scope_logs.log_records.extend(records)
    return request


def as_otlp_json(request: ExportLogsServiceRequest) -> dict:
    """The OTLP JSON encoding: protobuf's JSON mapping, but trace and span ids in hex rather than base64."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_logs in document.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            for log_record in scope_logs.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in log_record:
                        log_record[key] = base64.b64decode(log_record[key]).hex()
    return document
