"""OTLP log records -> Loggregator events (the README's "OpenTelemetry ingest" has the full table).

- topic: the record's, else the resource's attribute named by
  LOGGREGATOR_OTLP_TOPIC_ATTRIBUTE (a valid topic, or the record is rejected);
  else the resource's `service.name` made a topic (topic_from_service_name);
  else `otlp`.
- event_id: otlp.event_ids.
- timestamp: time_unix_nano, else observed_time_unix_nano, else the time of receipt.
- source: the resource's `service.instance.id`, else `host.name`, else `service.name`, else `otlp`.
- payload: everything else, as JSON (_payload).

The events come out as /publish-shaped dicts: otlp.checks puts them through
the same validation as a /publish body.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from events.validation import MAX_PAYLOAD_DEPTH, is_valid_topic
from otlp.event_ids import RECORD_UID_ATTRIBUTE, context_hasher, derived_event_id, parse_record_uid

DEFAULT_TOPIC = "otlp"
DEFAULT_SOURCE = "otlp"
SOURCE_ATTRIBUTES = ("service.instance.id", "host.name", "service.name")
_NOT_TOPIC_CHARACTERS = re.compile(r"[^A-Za-z0-9_]")
_TOPIC_SEGMENTS = 5
_EPOCH = datetime(1970, 1, 1)


class RecordRejected(Exception):
    """A record that cannot be mapped: it alone is rejected (partial_success)."""


@dataclass
class MappedExport:
    """Publish-shaped events, where each came from, and what was rejected (with where)."""

    events: list[dict] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)


def topic_from_service_name(service_name: str) -> str:
    """`checkout-api.eu/v2` -> `checkout_api.eu_v2`: a valid topic, or DEFAULT_TOPIC when nothing is left.

    Every character but letters, digits, `_` and `.` becomes `_`; empty
    segments are dropped; segments past the fifth are joined to it with `_`;
    the result is cut at 255 characters.
    """
    segments = [_NOT_TOPIC_CHARACTERS.sub("_", segment) for segment in service_name.split(".") if segment]
    if len(segments) > _TOPIC_SEGMENTS:
        segments[_TOPIC_SEGMENTS - 1 :] = ["_".join(segments[_TOPIC_SEGMENTS - 1 :])]
    topic = ".".join(segments)[:255].rstrip(".")
    return topic or DEFAULT_TOPIC


def map_export(export: ExportLogsServiceRequest, *, topic_attribute: str, received_at: datetime) -> MappedExport:
    mapped = MappedExport()
    received = received_at.astimezone(UTC).replace(tzinfo=None)
    for r, resource_logs in enumerate(export.resource_logs):
        try:
            resource = _Resource(
                key_values(resource_logs.resource.attributes, CONTEXT_ATTRIBUTES_DEPTH), topic_attribute
            )
        except RecordRejected as exc:
            for s, scope_logs in enumerate(resource_logs.scope_logs):
                for n in range(len(scope_logs.log_records)):
                    mapped.rejections.append(f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}]: resource {exc}")
            continue
        resource_part = _resource_part(resource.attributes, resource_logs)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            where = f"resourceLogs[{r}].scopeLogs[{s}]"
            try:
                scope_part = _scope_part(scope_logs.scope, scope_logs.schema_url)
            except RecordRejected as exc:
                mapped.rejections.extend(
                    f"{where}.logRecords[{n}]: scope {exc}" for n in range(len(scope_logs.log_records))
                )
                continue
            context = context_hasher(resource_logs, scope_logs)
            for n, record in enumerate(scope_logs.log_records):
                try:
                    event = _event(record, resource, resource_part, scope_part, context, received)
                except RecordRejected as exc:
                    mapped.rejections.append(f"{where}.logRecords[{n}]: {exc}")
                    continue
                mapped.events.append(event)
                mapped.places.append(f"{where}.logRecords[{n}]")
    return mapped


class _Resource:
    """What a resource gives all its records: attributes, topic (unless a record names one), source."""

    def __init__(self, attributes: dict, topic_attribute: str):
        self.attributes = attributes
        self.topic_attribute = topic_attribute
        # An invalid topic attribute rejects only the records that do not name a topic of their own.
        self.topic_problem: RecordRejected | None = None
        try:
            self.topic = _named_topic(attributes, topic_attribute)
        except RecordRejected as exc:
            self.topic, self.topic_problem = None, RecordRejected(f"resource {exc}")
        if self.topic is None:
            service_name = attributes.get("service.name")
            self.topic = topic_from_service_name(service_name) if isinstance(service_name, str) else DEFAULT_TOPIC
        self.source = next(
            (str(attributes[name]) for name in SOURCE_ATTRIBUTES if attributes.get(name) not in (None, "")),
            DEFAULT_SOURCE,
        )


def _named_topic(attributes: dict, topic_attribute: str) -> str | None:
    topic = attributes.get(topic_attribute)
    if topic is None:
        return None
    if not isinstance(topic, str) or not is_valid_topic(topic):
        raise RecordRejected(
            f"attribute `{topic_attribute}` is {topic!r:.100}, not a topic: 1 to 5 dot-separated segments "
            "of letters, digits and underscores"
        )
    return topic


def _event(record: LogRecord, resource: _Resource, resource_part, scope_part, context, received: datetime) -> dict:
    attributes = key_values(record.attributes)
    topic = _named_topic(attributes, resource.topic_attribute)
    if topic is None:
        if resource.topic_problem:
            raise resource.topic_problem
        topic = resource.topic
    uid = attributes.get(RECORD_UID_ATTRIBUTE)
    event_id = (parse_record_uid(uid) if isinstance(uid, str) else None) or derived_event_id(context, record)
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    # Naive UTC, as events.validation leaves every timestamp.
    timestamp = _EPOCH + timedelta(microseconds=nanos // 1000) if nanos else received
    return {
        "topic": topic,
        "event_id": event_id,
        "timestamp": timestamp,
        "source": resource.source,
        "payload": _payload(record, attributes, resource_part, scope_part),
    }


def _payload(record: LogRecord, attributes: dict, resource_part: dict, scope_part: dict) -> dict:
    """The record as JSON: its set fields under their OTLP (protobuf) names, ids in hex."""
    payload = {}
    if record.HasField("body"):
        payload["body"] = any_value(record.body)
    if record.severity_text:
        payload["severity_text"] = record.severity_text
    if record.severity_number:
        payload["severity_number"] = record.severity_number
    if record.event_name:
        payload["event_name"] = record.event_name
    if attributes:
        payload["attributes"] = attributes
    if record.dropped_attributes_count:
        payload["dropped_attributes_count"] = record.dropped_attributes_count
    if record.trace_id:
        payload["trace_id"] = record.trace_id.hex()
    if record.span_id:
        payload["span_id"] = record.span_id.hex()
    if record.flags:
        payload["flags"] = record.flags
    # Nanoseconds: the event's timestamp keeps microseconds.
    if record.time_unix_nano:
        payload["time_unix_nano"] = record.time_unix_nano
    if record.observed_time_unix_nano:
        payload["observed_time_unix_nano"] = record.observed_time_unix_nano
    payload["resource"] = resource_part
    if scope_part:
        payload["scope"] = scope_part
    return payload


def _resource_part(attributes: dict, resource_logs) -> dict:
    part = {"attributes": attributes}
    if resource_logs.resource.dropped_attributes_count:
        part["dropped_attributes_count"] = resource_logs.resource.dropped_attributes_count
    if resource_logs.schema_url:
        part["schema_url"] = resource_logs.schema_url
    return part


def _scope_part(scope: InstrumentationScope, schema_url: str) -> dict:
    part = {}
    if scope.name:
        part["name"] = scope.name
    if scope.version:
        part["version"] = scope.version
    if scope.attributes:
        part["attributes"] = key_values(scope.attributes, CONTEXT_ATTRIBUTES_DEPTH)
    if scope.dropped_attributes_count:
        part["dropped_attributes_count"] = scope.dropped_attributes_count
    if schema_url:
        part["schema_url"] = schema_url
    return part


# Where a value sits in the payload (1 is the payload object itself), so that
# AnyValue nesting obeys /publish's depth rule: attribute values sit at 3,
# resource and scope attribute values at 4, the body at 2.
ATTRIBUTES_DEPTH = 2
CONTEXT_ATTRIBUTES_DEPTH = 3
BODY_DEPTH = 2


def key_values(pairs: Iterable[KeyValue], depth: int = ATTRIBUTES_DEPTH) -> dict:
    """Attributes (or a kvlist) at `depth` as a JSON object; a key twice is refused, as /publish refuses it."""
    result = {pair.key: any_value(pair.value, depth + 1) for pair in pairs}
    if len(result) != len(pairs):
        seen = set()
        twice = next(pair.key for pair in pairs if pair.key in seen or seen.add(pair.key))
        raise RecordRejected(f"has the attribute key `{twice}` twice")
    return result


def any_value(value: AnyValue, depth: int = BODY_DEPTH):
    """An AnyValue as JSON: bytes in base64 and non-finite doubles as strings, as OTLP JSON writes them."""
    kind = value.WhichOneof("value")
    # The common kinds first, inline: this runs for every attribute of every record.
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        if math.isfinite(number):
            return number
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if kind == "bool_value":
        return value.bool_value
    if kind in ("array_value", "kvlist_value") and depth > MAX_PAYLOAD_DEPTH:
        raise RecordRejected(f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep")
    if kind == "array_value":
        return [any_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values, depth)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind is None:
        return None
    raise RecordRejected(f"has an AnyValue of kind `{kind}`, which logs do not use")
