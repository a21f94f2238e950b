"""Hostile and broken bodies: each gets a clear 4xx, nothing is stored, the service stays healthy."""

import gzip
import json
import socket
from decimal import Decimal

import pytest

from events.models import Event, IntakeBatch, Stats
from events.validation import MAX_PAYLOAD_DEPTH
from tests.factories import event, events


def post_raw(api, body: bytes, **headers):
    return api.post("/publish", body, content_type="application/json", **headers)


def assert_refused(response, status=400, *, item=None, field=None):
    assert response.status_code == status, response.content
    detail = response.json()
    assert detail["detail"]
    if status == 400:
        assert detail["item"] == item
        assert detail["field"] == field
    assert IntakeBatch.objects.count() == 0
    assert Stats.objects.count() == 0


def event_with_payload_text(payload: str | bytes, topic: str = "hostile.t") -> bytes:
    """One event whose payload is the given JSON text, byte for byte."""
    head = json.dumps(event(topic))[: -len(', "payload": {"n": 1}}')].encode()
    return head + b', "payload": ' + (payload.encode() if isinstance(payload, str) else payload) + b"}"


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"a": 1, "a": 2}', "key `a` twice"),
        ('{"outer": [{"k": 1, "x": 0, "k": 1}]}', "key `k` twice"),
        ('{"big": 18446744073709551616}', "integer 18446744073709551616"),
        ('{"small": -9223372036854775809}', "integer -9223372036854775809"),
        ('{"deep": [1, [2, [99999999999999999999999999999]]]}', "beyond the signed and unsigned 64-bit range"),
        ('{"mixed": [{"k": 1}, [2, -18446744073709551616], {"k": 3}]}', "integer -18446744073709551616"),
        ('{"mixed": [[1, 2], {"k": 1, "j": [3], "k": 2}]}', "key `k` twice"),
        ('{"huge": 1e400}', "beyond the range of a 64-bit float"),
        ('{"escaped": "caf\\u00e9", "a": 1, "a": 1}', "key `a` twice"),
        (nested(MAX_PAYLOAD_DEPTH + 1), f"more than {MAX_PAYLOAD_DEPTH} levels"),
    ],
)
def test_a_payload_the_typed_decode_would_let_through_is_refused(api, payload, message):
    response = post_raw(api, event_with_payload_text(payload))
    assert_refused(response, field="payload")
    assert message in response.json()["detail"]


@pytest.mark.django_db
def test_nesting_beyond_the_decoders_reach_is_refused(api):
    response = post_raw(api, event_with_payload_text(nested(100_000)))
    assert_refused(response)
    assert "nested too deeply" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": -Infinity}',
        b'{"x": "\xff\xfe"}',
        b'{"x": "a\x00b"}',
        b'{"x": "\\ud800"}',
    ],
)
def test_non_json_numbers_control_characters_and_invalid_utf8_in_a_payload_are_refused(api, payload):
    response = post_raw(api, event_with_payload_text(payload))
    assert_refused(response, field=response.json()["field"])
    assert response.json()["field"] in (None, "payload")


@pytest.mark.django_db
def test_an_item_with_a_bad_payload_is_named_in_a_batch(api):
    items = [json.dumps(e).encode() for e in events(3)] + [event_with_payload_text('{"n": 1, "n": 1}')]
    response = post_raw(api, b"[" + b",".join(items) + b"]")
    assert_refused(response, item=3, field="payload")


@pytest.mark.django_db
def test_a_duplicate_top_level_field_is_refused_and_named(api):
    body = json.dumps(event("first.topic"))[:-1] + ', "topic": "second.topic"}'
    response = post_raw(api, body.encode())
    assert_refused(response, field="topic")
    assert "twice" in response.json()["detail"]


@pytest.mark.django_db
def test_an_unknown_top_level_field_with_a_huge_integer_is_refused(api):
    body = json.dumps(event())[:-1] + ', "extra": 123456789012345678901234567890}'
    assert_refused(post_raw(api, body.encode()))


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [False, True])
def test_an_unknown_top_level_field_is_ignored_and_checked_like_the_rest(api, batch):
    def body(extra: str) -> bytes:
        item = json.dumps(event())[:-1] + f', "extra": {extra}}}'
        return f"[{json.dumps(event())}, {item}]".encode() if batch else item.encode()

    assert post_raw(api, body('{"k": [1, {"j": 2}], "ok": true}')).status_code == 202
    IntakeBatch.objects.all().delete()
    Stats.objects.all().delete()
    duplicate = post_raw(api, body('{"k": 1, "k": 2}'))
    assert duplicate.status_code == 400
    assert "key `k` twice" in duplicate.json()["detail"]
    assert duplicate.json()["item"] == (1 if batch else None)
    assert_refused(post_raw(api, body(nested(MAX_PAYLOAD_DEPTH + 1))), item=1 if batch else None)


@pytest.mark.django_db
def test_values_at_the_limits_are_accepted_and_read_back_exactly(api, publish, drain):
    payload = {
        "max": 2**64 - 1,
        "min": -(2**63),
        "float": 1.7976931348623157e308,
        "text": "café \u2603 \\u0000 as text",
        "deep": json.loads(nested(MAX_PAYLOAD_DEPTH - 1)),
    }
    sent = event("hostile.limits", payload=payload)
    assert publish(sent).status_code == 202
    drain()
    listed = api.get("/events", {"topic": "hostile.limits"})
    assert listed.status_code == 200
    # The same JSON numbers, compared as decimals: PostgreSQL's jsonb writes
    # 1.7976931348623157e308 back as its 309 digits, which Python reads as an int.
    as_decimals = {"parse_float": Decimal, "parse_int": Decimal}
    stored = json.loads(listed.content, **as_decimals)["events"][0]["payload"]
    assert stored == json.loads(json.dumps(payload), **as_decimals)


@pytest.mark.django_db
def test_a_body_that_once_poisoned_the_queue_is_refused_and_the_queue_keeps_flowing(api, publish, drain):
    # Invalid UTF-8 inside a payload string used to pass the raw payload
    # through; the consumer then failed on every attempt to decode the batch.
    assert_refused(post_raw(api, event_with_payload_text(b'{"x": "\xff"}')), field="payload")
    assert publish(events(2, topic="after.poison")).status_code == 202
    drain()
    assert Event.objects.filter(topic="after.poison").count() == 2


@pytest.mark.django_db
def test_a_gzip_body_is_accepted(api, drain):
    body = gzip.compress(json.dumps(events(50, topic="gz.ok")).encode())
    response = post_raw(api, body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 202
    drain()
    assert Event.objects.filter(topic="gz.ok").count() == 50


@pytest.mark.django_db
def test_a_gzip_bomb_is_refused_with_413(api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_BODY_BYTES": 1024 * 1024}
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", compresslevel=9)
    assert len(bomb) < 100 * 1024
    response = post_raw(api, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert_refused(response, 413)
    assert "decompressed" in response.json()["detail"]


@pytest.mark.django_db
# Named: a gzip header holds the time of compression, and pytest-xdist needs the same test ids in every worker.
@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b"[" * 10)[:-6]], ids=["not gzip", "truncated"])
def test_a_corrupt_or_truncated_gzip_body_is_refused(api, body):
    assert_refused(post_raw(api, body, HTTP_CONTENT_ENCODING="gzip"))


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, gzip"])
def test_an_unknown_content_encoding_is_refused_with_415(api, encoding):
    assert_refused(post_raw(api, b"{}", HTTP_CONTENT_ENCODING=encoding), 415)


@pytest.mark.django_db
def test_a_single_event_larger_than_the_body_limit_is_refused_with_413(api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_BODY_BYTES": 64 * 1024}
    body = json.dumps(event(payload={"blob": "x" * 100_000})).encode()
    assert_refused(post_raw(api, body), 413)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"topic": "x" * 10_000}, "topic"),
        ({"topic": "a", "limit": "9" * 400}, "limit"),
        ({"topic": "a", "limit": "1e3"}, "limit"),
        ({"topic": "a", "cursor": "\x00"}, "cursor"),
        ({"topic": "a", "cursor": "A" * 10_000}, "cursor"),
        ({"topic": "a", "cursor": "OTk5OTk5LTAxLTAxVDAwOjAwOjAwKzAwOjAwfDE"}, "cursor"),
    ],
)
def test_hostile_queries_to_events_are_refused_with_400(api, params, field):
    response = api.get("/events", params)
    assert response.status_code == 400
    assert field in response.json()


# --- Against a real server: limits hold before the body is read ---------------


def send_raw(url: str, request: bytes, *, read_limit: int = 65536) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        # No half-close: uvicorn takes the end of the client's stream for a
        # disconnect and drops the answer. The request says Connection: close,
        # so the server ends the exchange.
        answer = b""
        while chunk := sock.recv(read_limit):
            answer += chunk
    return answer


@pytest.mark.slow
def test_a_real_server_refuses_a_huge_declared_body_at_once_and_stays_healthy(aggregator_server):
    # 100 GB declared, a few bytes sent: the answer comes from the header alone.
    answer = send_raw(
        aggregator_server.url,
        b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000000\r\nConnection: close\r\n\r\n[{",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    nested_body = event_with_payload_text(nested(200_000))
    for body in (nested_body, b"\x00" * 1000, b'{"topic": "' + b"x" * 10_000 + b'"}'):
        response = aggregator_server.session.post(
            f"{aggregator_server.url}/publish", data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code == 400
    assert aggregator_server.publish(event("after.hostile")).status_code == 202
    stats = aggregator_server.wait_until_processed()
    assert stats["received"] == stats["unique_processed"] == 1
