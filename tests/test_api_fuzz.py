"""Fuzz every operation from the API's own OpenAPI schema: no 5xx, every response as documented.

schemathesis generates valid and invalid requests (within the schema, and
outside it) and calls the Django WSGI application in-process, against the
test database. Derandomized, so a run is reproducible.
"""

from unittest import mock

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from events.auth import hash_key, new_key
from events.models import ApiKey

# OTLP's protobuf bodies are bytes, sent as they are.
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
# The schema of the service as api_key below sets it up (keys exist, reads
# protected), loaded at collection, before any database exists. Not
# loggregator_site.wsgi: that one also starts the in-process consumer thread.
with (
    mock.patch("events.auth.keys_configured", return_value=True),
    override_settings(LOGGREGATOR={**django_settings.LOGGREGATOR, "PROTECT_READS": True}),
):
    # The live stream never ends by itself (tests/test_event_stream.py covers its errors).
    schema = schemathesis.openapi.from_wsgi("/openapi.json", get_wsgi_application()).exclude(path="/events/stream")

MAX_EXAMPLES = 100


@pytest.fixture
def api_key(settings):
    """Keys configured and reads protected: the strictest setup; a valid key on every call.

    Random bearer tokens would only meet the 401 path (tests/test_api_keys.py
    covers it) and leave the rest of each operation unexplored.
    """
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PROTECT_READS": True}
    key = new_key()
    ApiKey.objects.create(name="fuzz", prefix=key[:12], key_hash=hash_key(key), scopes="publish read")
    return key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_the_api_answers_every_generated_request_as_its_schema_says(case, api_key):
    # Every check schemathesis has (no 5xx, documented statuses, headers and
    # bodies, invalid data refused...), valid data accepted as defined below.
    excluded = [positive_data_acceptance, schema_valid_data_is_accepted, negative_data_rejection]
    headers = {"Host": "localhost", "Authorization": f"Bearer {api_key}"}
    if _drops_the_authorization_header(case):
        del headers["Authorization"]  # the negative case it is: keys are configured, so a 401 must follow
    case.call_and_validate(
        headers=headers,
        excluded_checks=excluded if case.path in LENIENT_DECODERS else excluded[:1],
        additional_checks=[schema_valid_data_is_accepted],
    )


def _drops_the_authorization_header(case) -> bool:
    """Whether schemathesis left out the required Authorization header on purpose (a negative header)."""
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return bool(headers and headers.mode.is_negative and "Authorization" not in (case.headers or {}))


# Bodies whose validity JSON Schema cannot state, so generated "valid" and
# "invalid" bodies mean little there: the protobuf JSON mapping takes null for
# any field, numbers as strings and ignores unknown fields, and any bytes may
# be a protobuf. Their own decoders are fuzzed in tests/test_otlp_fuzz.py;
# here they are still held to no 5xx and documented statuses and bodies.
LENIENT_DECODERS = ("/v1/logs",)


# Rules that JSON Schema cannot express, by the field they concern; the schema states them in prose.
# (None: an unknown top-level field, ignored but checked like the payload.)
_PAYLOAD_RULES = ("twice in one object", "64-bit range", "levels deep", "NUL characters")
UNEXPRESSIBLE_RULES = {
    "payload": _PAYLOAD_RULES,
    None: _PAYLOAD_RULES,
    # A date-time with an offset can fall outside years 1-9999 once converted to UTC.
    "timestamp": ("out of range once converted to UTC",),
}


@schemathesis.check
def schema_valid_data_is_accepted(ctx, response, case):
    """schemathesis' positive_data_acceptance, except for the payload rules above."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 400:
        return None
    error = response.json()
    if set(error) == {"cursor"}:
        return None  # an opaque token: any string fits the schema, only the server's own are valid
    if set(error) == {"until"} and "before it starts" in error["until"]:
        return None  # a window that ends before it starts: two valid instants in the wrong order
    if any(rule in error["detail"] for rule in UNEXPRESSIBLE_RULES.get(error.get("field"), ())):
        return None
    raise AssertionError(f"A schema-valid request was refused: {error}")
