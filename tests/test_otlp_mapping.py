"""The OTLP -> event mapping: topic, event_id, timestamp, source and payload of each record."""

import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from events.validation import InvalidEvents, parse_events
from otlp.mapping import map_export, topic_from_service_name
from tests.otlp_exports import SPAN_ID, TIME_UNIX_NANO, TRACE_ID, export, record

RECEIVED_AT = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)


def mapped(request, topic_attribute="loggregator.topic"):
    return map_export(request, topic_attribute=topic_attribute, received_at=RECEIVED_AT)


def only_event(request, **kwargs) -> dict:
    result = mapped(request, **kwargs)
    assert result.rejections == []
    (event,) = result.events
    return event


@pytest.mark.parametrize(
    ("service_name", "topic"),
    [
        ("checkout", "checkout"),
        ("checkout-api.eu/v2", "checkout_api.eu_v2"),
        ("a..b.", "a.b"),
        ("a.b.c.d.e.f.g", "a.b.c.d.e_f_g"),
        ("café crème", "caf__cr_me"),
        ("...", "otlp"),
        ("x" * 300, "x" * 255),
    ],
)
def test_service_name_is_made_a_valid_topic(service_name, topic):
    assert topic_from_service_name(service_name) == topic


def test_the_topic_attribute_of_the_record_wins_over_the_resource_and_service_name():
    request = export(
        record("own topic", attributes={"loggregator.topic": "payments.eu"}),
        record("resource topic"),
        resource={"service.name": "checkout", "loggregator.topic": "shop.orders"},
    )

    assert [event["topic"] for event in mapped(request).events] == ["payments.eu", "shop.orders"]


def test_the_topic_attribute_name_is_configurable():
    request = export(record("x", attributes={"team.topic": "team_a", "loggregator.topic": "ignored"}))

    assert only_event(request, topic_attribute="team.topic")["topic"] == "team_a"


def test_without_any_name_the_topic_is_otlp():
    assert only_event(export(record("x"), resource={}))["topic"] == "otlp"


def test_an_invalid_topic_attribute_rejects_only_the_records_that_use_it():
    request = export(
        record("own valid topic", attributes={"loggregator.topic": "fine"}),
        record("falls back to the invalid resource topic"),
        resource={"loggregator.topic": "no spaces allowed"},
    )

    result = mapped(request)

    assert [event["topic"] for event in result.events] == ["fine"]
    assert result.rejections == [
        "resourceLogs[0].scopeLogs[0].logRecords[1]: resource attribute `loggregator.topic` is "
        "'no spaces allowed', not a topic: 1 to 5 dot-separated segments of letters, digits and underscores"
    ]


@pytest.mark.parametrize(
    ("uid", "event_id"),
    [
        ("0b6f5c58-4c4b-4f34-9a5e-1c2d3e4f5a6b", uuid.UUID("0b6f5c58-4c4b-4f34-9a5e-1c2d3e4f5a6b")),
        ("0B6F5C584C4B4F349A5E1C2D3E4F5A6B", uuid.UUID("0b6f5c58-4c4b-4f34-9a5e-1c2d3e4f5a6b")),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", uuid.UUID("01563e3a-b5d3-d676-4c61-efb99302bd5b")),
    ],
    ids=["uuid", "hex", "ulid"],
)
def test_a_log_record_uid_that_is_a_uuid_or_ulid_is_the_event_id(uid, event_id):
    assert only_event(export(record("x", attributes={"log.record.uid": uid})))["event_id"] == event_id


def test_a_log_record_uid_that_is_no_uuid_is_ignored():
    event = only_event(export(record("x", attributes={"log.record.uid": "not-a-uuid"})))

    assert event["event_id"].version == 8


def test_the_same_record_exported_again_has_the_same_event_id_wherever_it_sits():
    first = mapped(export(record("a"), record("b"))).events
    again = mapped(export(record("b"), record("a"), record("c"))).events

    assert [first[0]["event_id"], first[1]["event_id"]] == [again[1]["event_id"], again[0]["event_id"]]


BASE = {"body": "x", "severity_number": 9, "attributes": {"k": 1}, "trace_id": TRACE_ID, "span_id": SPAN_ID}


@pytest.mark.parametrize(
    "change",
    [
        {"body": "y"},
        {"time_unix_nano": TIME_UNIX_NANO + 1},
        {"observed_time_unix_nano": 1},
        {"severity_number": 10},
        {"severity_text": "INFO"},
        {"attributes": {"k": 2}},
        {"attributes": {"k": 1.0}},
        {"attributes": {"k": "1"}},
        {"trace_id": bytes(16)},
        {"span_id": bytes(8)},
        {"flags": 1},
        {"event_name": "e"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_records_that_differ_in_any_field_have_different_event_ids(change):
    base = only_event(export(record(**BASE)))["event_id"]

    assert only_event(export(record(**{**BASE, **change})))["event_id"] != base


def test_the_same_record_under_another_resource_or_scope_has_another_event_id():
    ids = {
        only_event(export(record(**BASE)))["event_id"],
        only_event(export(record(**BASE), resource={"service.name": "checkout", "host.name": "h"}))["event_id"],
        only_event(export(record(**BASE), scope_name="other"))["event_id"],
        only_event(export(record(**BASE), scope_version="2.0"))["event_id"],
    }

    assert len(ids) == 4


def test_the_timestamp_is_the_record_time_else_the_observed_time_else_the_time_of_receipt():
    request = export(
        record("time", time_unix_nano=TIME_UNIX_NANO, observed_time_unix_nano=TIME_UNIX_NANO + 10**9),
        record("observed", time_unix_nano=0, observed_time_unix_nano=TIME_UNIX_NANO + 10**9),
        record("neither", time_unix_nano=0),
    )

    assert [event["timestamp"] for event in mapped(request).events] == [
        datetime(2026, 5, 1, 12, 0, 0, 123456),
        datetime(2026, 5, 1, 12, 0, 1, 123456),
        datetime(2026, 6, 1, 8, 30),
    ]


@pytest.mark.parametrize(
    ("resource", "source"),
    [
        ({"service.name": "svc", "host.name": "host-1", "service.instance.id": "svc-7"}, "svc-7"),
        ({"service.name": "svc", "host.name": "host-1"}, "host-1"),
        ({"service.name": "svc"}, "svc"),
        ({}, "otlp"),
    ],
)
def test_the_source_is_the_instance_else_the_host_else_the_service(resource, source):
    assert only_event(export(record("x"), resource=resource))["source"] == source


def test_the_payload_keeps_everything_a_reader_wants_back():
    request = export(
        record(
            {"user": {"id": 7, "roles": ["admin", None]}, "raw": b"\x00\xff", "ratio": float("inf")},
            severity_text="WARN",
            severity_number=13,
            event_name="login",
            attributes={"http.status": 503},
            trace_id=TRACE_ID,
            span_id=SPAN_ID,
            flags=1,
            observed_time_unix_nano=TIME_UNIX_NANO + 5,
        ),
        resource={"service.name": "auth", "deployment.environment": "prod"},
    )
    request.resource_logs[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"

    payload = only_event(request)["payload"]

    assert payload == {
        "body": {"user": {"id": 7, "roles": ["admin", None]}, "raw": "AP8=", "ratio": "Infinity"},
        "severity_text": "WARN",
        "severity_number": 13,
        "event_name": "login",
        "attributes": {"http.status": 503},
        "trace_id": TRACE_ID.hex(),
        "span_id": SPAN_ID.hex(),
        "flags": 1,
        "time_unix_nano": TIME_UNIX_NANO,
        "observed_time_unix_nano": TIME_UNIX_NANO + 5,
        "resource": {
            "attributes": {"service.name": "auth", "deployment.environment": "prod"},
            "schema_url": "https://opentelemetry.io/schemas/1.26.0",
        },
        "scope": {"name": "tests", "version": "1.0"},
    }


def test_a_record_without_a_body_has_none_in_its_payload_and_an_empty_value_is_null():
    request = export(LogRecord(time_unix_nano=TIME_UNIX_NANO))
    request.resource_logs[0].scope_logs[0].log_records[0].attributes.add(key="empty")

    payload = only_event(request)["payload"]

    assert "body" not in payload
    assert payload["attributes"] == {"empty": None}


def nested_arrays(levels: int):
    """An export whose one record's body is `levels` arrays, one in another (built in place: no decoder limit)."""
    request = export(record(None))
    value = request.resource_logs[0].scope_logs[0].log_records[0].body
    for _ in range(levels):
        value = value.array_value.values.add()
    value.string_value = "bottom"
    return request


def publish_body(payload: dict) -> bytes:
    event = {"topic": "t", "event_id": str(uuid.uuid4()), "timestamp": "2026-01-01T00:00:00Z", "source": "s"}
    return msgspec.json.encode({**event, "payload": payload})


@pytest.mark.parametrize("levels", [63, 64])
def test_nesting_is_limited_exactly_as_publish_limits_payloads(levels):
    result = mapped(nested_arrays(levels))
    payload = {"body": "bottom"}
    for _ in range(levels):
        payload["body"] = [payload["body"]]

    if levels == 63:
        assert len(result.events) == 1
        assert parse_events(publish_body(payload), max_events=1)
    else:
        assert result.rejections == ["resourceLogs[0].scopeLogs[0].logRecords[0]: is nested more than 64 levels deep"]
        with pytest.raises(InvalidEvents, match="nested more than 64 levels deep"):
            parse_events(publish_body(payload), max_events=1)
