"""POST /v1/logs in-process: both encodings, partial success, the publish path's guards, Status errors."""

import gzip
import json

import pytest
from google.rpc import code_pb2
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from events.auth import hash_key, new_key
from events.models import ApiKey, Event
from tests.otlp_exports import SPAN_ID, TRACE_ID, as_otlp_json, export, record

pytestmark = pytest.mark.django_db

PROTOBUF = "application/x-protobuf"


@pytest.fixture
def post(api):
    def _post(body: bytes, content_type=PROTOBUF, **headers):
        return api.generic("POST", "/v1/logs", body, content_type=content_type, **headers)

    return _post


def post_protobuf(post, request, **headers):
    return post(request.SerializeToString(), **headers)


def post_json(post, request, **headers):
    return post(json.dumps(as_otlp_json(request)).encode(), "application/json", **headers)


def export_response(response) -> ExportLogsServiceResponse:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PROTOBUF
    return ExportLogsServiceResponse.FromString(response.content)


def status_of(response) -> Status:
    assert response["Content-Type"] == PROTOBUF
    return Status.FromString(response.content)


def stored():
    return list(Event.objects.order_by("id").values("topic", "event_id", "timestamp", "source", "payload"))


def sample_export():
    return export(
        record(
            "payment declined",
            severity_text="ERROR",
            severity_number=17,
            attributes={"order": {"id": 42, "items": ["book", 2.5]}},
            trace_id=TRACE_ID,
            span_id=SPAN_ID,
            flags=1,
        ),
        record("retrying", severity_text="INFO", severity_number=9),
    )


def test_a_protobuf_export_is_stored_as_events_and_counted(post, drain, stats):
    answer = export_response(post_protobuf(post, sample_export()))

    assert not answer.HasField("partial_success")
    drain()
    events = stored()
    assert [event["payload"]["body"] for event in events] == ["payment declined", "retrying"]
    assert {event["topic"] for event in events} == {"checkout"}
    assert {event["source"] for event in events} == {"checkout-1"}
    assert events[0]["payload"]["trace_id"] == TRACE_ID.hex()
    assert events[0]["payload"]["attributes"] == {"order": {"id": 42, "items": ["book", 2.5]}}
    counts = stats()
    assert (counts["received"], counts["unique_processed"], counts["topics"]) == (2, 2, ["checkout"])


def test_the_events_api_lists_otlp_events_like_any_other(post, drain, api):
    post_protobuf(post, sample_export())
    drain()

    page = api.get("/events", {"topic": "checkout"}).json()

    assert [event["payload"]["severity_text"] for event in page["events"]] == ["ERROR", "INFO"]


def test_the_same_export_as_json_and_as_protobuf_is_the_same_set_of_events(post, drain, stats):
    request = sample_export()
    json_response = post_json(post, request)
    assert json_response.status_code == 200
    assert json_response["Content-Type"] == "application/json"
    assert json_response.json() == {}
    drain()
    after_json = stored()

    export_response(post_protobuf(post, request))
    drain()

    assert stored() == after_json
    counts = stats()
    assert (counts["unique_processed"], counts["duplicate_dropped"]) == (2, 2)


def test_a_retried_export_is_stored_once_and_counted_as_duplicates(post, drain, stats):
    request = sample_export()
    export_response(post_protobuf(post, request))
    export_response(post_protobuf(post, request))
    drain()

    assert len(stored()) == 2
    assert (stats()["unique_processed"], stats()["duplicate_dropped"]) == (2, 2)


def test_gzip_bodies_are_accepted(post, drain):
    body = gzip.compress(sample_export().SerializeToString())

    export_response(post(body, HTTP_CONTENT_ENCODING="gzip"))
    drain()

    assert len(stored()) == 2


def test_unmappable_records_are_rejected_in_partial_success_and_the_others_kept(post, drain):
    request = export(
        record("kept"),
        record("NUL \x00 inside"),
        record("bad topic", attributes={"loggregator.topic": "not a topic!"}),
        record("key twice", attributes=[]),
    )
    request.resource_logs[0].scope_logs[0].log_records[3].attributes.add(key="a").value.int_value = 1
    request.resource_logs[0].scope_logs[0].log_records[3].attributes.add(key="a").value.int_value = 2

    answer = export_response(post_protobuf(post, request))

    assert answer.partial_success.rejected_log_records == 3
    message = answer.partial_success.error_message
    assert "logRecords[1]: field `payload`: must not contain NUL characters" in message
    assert "logRecords[2]: attribute `loggregator.topic` is 'not a topic!', not a topic" in message
    assert "logRecords[3]: has the attribute key `a` twice" in message
    drain()
    assert [event["payload"]["body"] for event in stored()] == ["kept"]


def test_an_empty_export_is_answered_and_stores_nothing(post, stats):
    export_response(post(b""))
    export_response(post_protobuf(post, export()))

    assert stats()["received"] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "complaint"),
    [
        (sample_export().SerializeToString()[:-3], PROTOBUF, 400, "not a binary protobuf"),
        # Field 1 (resource_logs), length-delimited, declaring 2 GiB, followed by nothing.
        (b"\x0a\x80\x80\x80\x80\x08", PROTOBUF, 400, "not a binary protobuf"),
        (b'{"resourceLogs": {"oops": 1}}', "application/json", 400, "not an OTLP ExportLogsServiceRequest"),
        (b'[{"resourceLogs": []}]', "application/json", 400, "must be an object"),
        (b'{"resourceLogs": [', "application/json", 400, "Malformed JSON"),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}',
            "application/json",
            400,
            "`resourceLogs[0].scopeLogs[0].logRecords[0].traceId` is not a hex string",
        ),
        (sample_export().SerializeToString(), "text/plain", 415, "Unsupported media type"),
    ],
    ids=["truncated", "2-GiB-length", "wrong-shape", "array", "malformed-json", "bad-hex", "wrong-type"],
)
def test_bad_bodies_get_a_status_that_says_why_and_store_nothing(post, stats, body, content_type, status, complaint):
    response = post(body, content_type)

    assert response.status_code == status
    if content_type == "application/json":
        error = response.json()
        assert error["code"] == code_pb2.INVALID_ARGUMENT
        assert complaint in error["message"]
    else:
        assert complaint in status_of(response).message
    assert stats()["received"] == 0


def test_a_body_over_the_limit_is_413_compressed_or_not(post, settings, stats):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "OTLP_MAX_BODY_BYTES": 1000}
    large = export(*(record(f"line {n}") for n in range(100))).SerializeToString()
    assert len(gzip.compress(large)) < 1000 < len(large)

    plain = post(large)
    bomb = post(gzip.compress(large), HTTP_CONTENT_ENCODING="gzip")

    assert plain.status_code == bomb.status_code == 413
    assert "larger than the 1000-byte limit" in status_of(plain).message
    assert "decompressed" in status_of(bomb).message
    assert stats()["received"] == 0


def test_a_corrupt_gzip_body_is_400(post):
    response = post(b"\x1f\x8b not gzip", HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 400
    assert "gzip" in status_of(response).message


def test_api_keys_are_checked_as_for_publish(post, stats):
    key = new_key()
    ApiKey.objects.create(name="reader", prefix=key[:12], key_hash=hash_key(key), scopes="read")

    anonymous = post_protobuf(post, sample_export())
    reader = post_protobuf(post, sample_export(), HTTP_AUTHORIZATION=f"Bearer {key}")

    assert anonymous.status_code == 401
    assert status_of(anonymous).code == code_pb2.UNAUTHENTICATED
    assert reader.status_code == 403
    assert "lacks the `publish` scope" in status_of(reader).message
    assert stats()["received"] == 0


def test_a_full_backlog_is_503_with_retry_after_and_nothing_kept(post, settings, stats):
    export_response(post_protobuf(post, sample_export()))  # two events queued, none processed
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_QUEUED_EVENTS": 2, "BACKPRESSURE_RETRY_AFTER": 7}

    response = post_protobuf(post, sample_export())

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert status_of(response).code == code_pb2.UNAVAILABLE
    assert stats()["received"] == 2


def test_over_the_publish_rate_is_429_with_retry_after(post, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PUBLISH_RATE": "1/min"}

    first = post_protobuf(post, sample_export(), REMOTE_ADDR="10.0.0.9")
    second = post_protobuf(post, sample_export(), REMOTE_ADDR="10.0.0.9")

    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second["Retry-After"]) > 0
    assert status_of(second).code == code_pb2.RESOURCE_EXHAUSTED


def test_a_declared_length_of_2_gib_is_413_before_anything_is_read(post, stats):
    response = post(sample_export().SerializeToString(), CONTENT_LENGTH=str(2 * 1024**3))

    assert response.status_code == 413
    assert "larger than the" in status_of(response).message
    assert stats()["received"] == 0


def test_the_schema_documents_both_encodings_and_every_answer(api):
    operation = api.get("/openapi.json").json()["paths"]["/v1/logs"]["post"]

    assert set(operation["requestBody"]["content"]) == {PROTOBUF, "application/json"}
    assert set(operation["responses"]) == {"200", "400", "401", "403", "413", "415", "429", "503"}
    assert set(operation["responses"]["200"]["content"]) == {PROTOBUF, "application/json"}
    assert "log.record.uid" in operation["description"]
    assert all(parameter["name"] != "format" for parameter in operation.get("parameters", []))
