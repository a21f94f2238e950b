"""The API documentation describes the real API."""

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_schema_describes_the_publish_body_as_an_event_or_a_batch(api):
    schema = api.get("/openapi.json").json()
    assert schema["paths"]["/publish"]["post"]["requestBody"]["required"] is True
    body = schema["paths"]["/publish"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    single, batch = body["oneOf"]
    assert single["required"] == ["topic", "event_id", "timestamp", "source", "payload"]
    assert single["properties"]["topic"]["pattern"]
    assert single["properties"]["payload"]["type"] == "object"
    assert batch["type"] == "array" and batch["items"] == single


@pytest.mark.django_db
def test_the_schema_lists_the_responses_and_errors(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths["/publish"]["post"]["responses"]) >= {"202", "400", "413", "415"}
    assert set(paths["/events"]["get"]["responses"]) >= {"200", "400"}
    topic = next(p for p in paths["/events"]["get"]["parameters"] if p["name"] == "topic")
    assert topic["required"] is True
    stats = paths["/stats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert stats["$ref"].endswith("/Stats")


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_render(api, page):
    response = api.get(page)
    assert response.status_code == 200
    assert b"openapi.json" in response.content


def security(api) -> dict[str, list]:
    paths = api.get("/openapi.json").json()["paths"]
    return {path: paths[path][method]["security"] for path, method in PATHS.items()}


PATHS = {"/publish": "post", "/events": "get", "/stats": "get"}
OPTIONAL = [{}, {"apiKey": []}]
REQUIRED = [{"apiKey": []}]


@pytest.mark.django_db
def test_without_keys_the_schema_says_no_operation_needs_one(api):
    assert security(api) == {"/publish": OPTIONAL, "/events": OPTIONAL, "/stats": OPTIONAL}


@pytest.mark.django_db
def test_once_a_key_exists_the_schema_says_publish_needs_one(api):
    call_command("api_keys", "create", "billing", stdout=io.StringIO())
    assert security(api) == {"/publish": REQUIRED, "/events": OPTIONAL, "/stats": OPTIONAL}


@pytest.mark.django_db
def test_with_protected_reads_the_schema_says_reads_need_a_key(api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PROTECT_READS": True}
    assert security(api) == {"/publish": OPTIONAL, "/events": REQUIRED, "/stats": REQUIRED}
