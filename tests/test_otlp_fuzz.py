"""Fuzz the OTLP decoder and mapping through the view: never a 5xx, and every record accounted for."""

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.otlp_exports import as_otlp_json, export, record

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
VALID = export(
    record("a", attributes={"k": [1, 2.5, True, {"n": b"\x01"}]}, severity_number=9, trace_id=b"\x01" * 16),
    record({"nested": {"x": "y"}}, attributes={"loggregator.topic": "fuzz.topic"}),
).SerializeToString()


@st.composite
def mutations(draw):
    """A valid export with bytes flipped, cut off, or spliced in."""
    body = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and position < len(body):
            body[position] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del body[position:]
        else:
            body[position:position] = draw(st.binary(min_size=1, max_size=8))
    return bytes(body)


def _post(api, body: bytes, content_type: str):
    response = api.generic("POST", "/v1/logs", body, content_type=content_type)
    assert response.status_code in (200, 400), (response.status_code, response.content)
    return response


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), mutations()))
def test_any_bytes_as_protobuf_are_answered_200_or_400(api, body):
    response = _post(api, body, "application/x-protobuf")
    if response.status_code == 200:
        ExportLogsServiceResponse.FromString(response.content)


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_bytes_as_json_are_answered_200_or_400(api, body):
    _post(api, body, "application/json")


_scalars = st.one_of(
    st.text(max_size=20).map(lambda text: AnyValue(string_value=text)),
    st.booleans().map(lambda flag: AnyValue(bool_value=flag)),
    st.integers(-(2**63), 2**63 - 1).map(lambda number: AnyValue(int_value=number)),
    st.floats().map(lambda number: AnyValue(double_value=number)),
    st.binary(max_size=10).map(lambda data: AnyValue(bytes_value=data)),
    st.just(AnyValue()),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: AnyValue(array_value={"values": items})),
        st.lists(st.tuples(st.text(max_size=8), children), max_size=4).map(
            lambda pairs: AnyValue(kvlist_value={"values": [KeyValue(key=key, value=value) for key, value in pairs]})
        ),
    ),
    max_leaves=12,
)
_records = st.builds(
    lambda body, pairs, nanos, topic: record(
        body,
        time_unix_nano=nanos,
        attributes=[KeyValue(key=key, value=value) for key, value in pairs]
        + ([KeyValue(key="loggregator.topic", value=AnyValue(string_value=topic))] if topic is not None else []),
    ),
    body=_values,
    pairs=st.lists(st.tuples(st.text(max_size=8), _values), max_size=4),
    nanos=st.integers(0, 2**64 - 1),
    topic=st.none() | st.text(max_size=12),
)


@FUZZ
@given(records=st.lists(_records, min_size=1, max_size=5), as_json=st.booleans())
def test_every_generated_record_is_accepted_or_rejected_never_lost(api, stats, records, as_json):
    request = export(*records)
    received_before = stats()["received"]

    if as_json:
        body = api.post("/v1/logs", as_otlp_json(request), format="json")
        assert body.status_code == 200, body.content
        rejected = int(body.json().get("partialSuccess", {}).get("rejectedLogRecords", 0))
    else:
        body = _post(api, request.SerializeToString(), "application/x-protobuf")
        assert body.status_code == 200
        rejected = ExportLogsServiceResponse.FromString(body.content).partial_success.rejected_log_records

    assert stats()["received"] - received_before + rejected == len(records)


# OTLP JSON's own field names, so generated documents get deep into the decoder.
_OTLP_KEYS = st.sampled_from(
    [
        "resourceLogs", "resource_logs", "scopeLogs", "logRecords", "resource", "scope", "attributes", "key",
        "value", "body", "stringValue", "intValue", "doubleValue", "boolValue", "bytesValue", "arrayValue",
        "kvlistValue", "values", "traceId", "spanId", "timeUnixNano", "observedTimeUnixNano", "severityNumber",
        "severityText", "flags", "name", "version", "schemaUrl", "droppedAttributesCount", "eventName",
    ]
)  # fmt: skip
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_OTLP_KEYS, children, max_size=4),
    max_leaves=25,
)


@FUZZ
@given(document=st.dictionaries(_OTLP_KEYS, _json_values, max_size=3))
def test_json_documents_of_any_shape_are_answered_200_or_400(api, document):
    _post(api, msgspec.json.encode(document), "application/json")
