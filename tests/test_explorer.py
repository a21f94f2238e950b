"""The explorer's page at /, and how a browser session gets to read when reads are protected."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from events.models import ApiKey


@pytest.fixture
def protected_reads(settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PROTECT_READS": True}


def new_key(scope: str) -> str:
    out = io.StringIO()
    call_command("api_keys", "create", f"a-{scope}-key", "--scope", scope, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


@pytest.mark.django_db
def test_the_explorer_is_the_home_page_with_its_script_and_styles_from_this_host(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'role="search"' in html
    assert '<script src="/static/explorer/explorer.js" defer>' in html
    assert '<link rel="stylesheet" href="/static/explorer/explorer.css">' in html
    assert 'data-events-url="/events"' in html and 'data-stream-url="/events/stream"' in html
    assert "http://" not in html and "https://" not in html


@pytest.mark.django_db
def test_with_reads_protected_the_page_asks_for_a_read_key(client, protected_reads):
    html = client.get("/").content.decode()
    assert 'name="key"' in html and "data-events-url" not in html
    assert client.get("/events", {"topic": "a"}).status_code == 401


@pytest.mark.django_db
def test_a_read_key_entered_in_the_page_lets_the_session_read_until_revoked(client, protected_reads):
    key = new_key("read")
    assert client.post("/explorer/read-key", {"key": key}).status_code == 302
    assert "data-events-url" in client.get("/").content.decode()
    assert client.get("/events", {"topic": "a"}).status_code == 200
    assert client.get("/stats").status_code == 200
    assert key not in str(dict(client.session))  # the session keeps the key's id, not the secret

    ApiKey.objects.update(revoked_at=timezone.now())
    assert client.get("/stats").status_code == 401


@pytest.mark.django_db
def test_a_key_without_the_read_scope_is_refused_and_changes_nothing(client, protected_reads):
    refused = client.post("/explorer/read-key", {"key": new_key("publish")})
    assert refused.status_code == 400
    assert b"not an active API key with the `read` scope" in refused.content
    assert client.post("/explorer/read-key", {"key": "lgr_made-up"}).status_code == 400
    assert client.get("/stats").status_code == 401


@pytest.mark.django_db
def test_forgetting_the_key_ends_the_sessions_reads(client, protected_reads):
    client.post("/explorer/read-key", {"key": new_key("read")})
    assert client.post("/explorer/read-key", {"forget": ""}).status_code == 302
    assert client.get("/stats").status_code == 401


@pytest.mark.django_db
def test_a_staff_login_is_enough_to_read_but_not_any_login(client, protected_reads):
    client.force_login(User.objects.create_user("someone", password="pw-for-tests"))
    assert client.get("/stats").status_code == 401
    client.force_login(User.objects.create_user("operator", password="pw-for-tests", is_staff=True))
    assert client.get("/stats").status_code == 200
    assert client.get("/events", {"topic": "a"}).status_code == 200


@pytest.mark.django_db
def test_a_header_key_still_wins_over_the_session(client, protected_reads):
    client.force_login(User.objects.create_user("operator", password="pw-for-tests", is_staff=True))
    assert client.get("/stats", HTTP_AUTHORIZATION="Bearer lgr_made-up").status_code == 401
