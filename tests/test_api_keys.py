"""Optional API keys: off by default, required for /publish once a key exists, for reads when protected."""

import io

import pytest
from django.core.management import CommandError, call_command

from events.models import ApiKey
from tests.factories import event


def api_keys(*args) -> str:
    out = io.StringIO()
    call_command("api_keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.mark.django_db
def test_without_keys_everything_is_open(publish, api):
    assert publish(event()).status_code == 202
    assert api.get("/stats").status_code == 200


@pytest.mark.django_db
def test_once_a_key_exists_publish_needs_one(publish):
    key = api_keys("create", "billing")
    refused = publish(event())
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert "publish" in refused.json()["detail"]
    assert publish(event(), **bearer(key)).status_code == 202
    assert publish(event(), **bearer(key + "x")).status_code == 401
    assert publish(event(), HTTP_AUTHORIZATION="Bearer ").status_code == 401


@pytest.mark.django_db
def test_only_the_hash_of_a_key_is_stored(publish):
    key = api_keys("create", "billing")
    stored = ApiKey.objects.get()
    assert key.startswith("lgr_") and len(key) > 40
    assert key not in (stored.key_hash, stored.prefix) and stored.prefix == key[:12]
    assert key not in api_keys("list")


@pytest.mark.django_db
def test_a_revoked_key_is_refused_at_once(publish):
    key = api_keys("create", "billing")
    api_keys("create", "other")
    assert api_keys("revoke", key[:12]) == "Revoked 'billing'."
    assert publish(event(), **bearer(key)).status_code == 401
    assert "revoked" in api_keys("list")


@pytest.mark.django_db
def test_a_key_without_the_scope_is_refused_with_403(publish, api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PROTECT_READS": True}
    reader = api_keys("create", "dashboard", "--scope", "read")
    writer = api_keys("create", "svc", "--scope", "publish")
    assert publish(event(), **bearer(reader)).status_code == 403
    assert api.get("/stats", **bearer(writer)).status_code == 403
    assert api.get("/stats", **bearer(reader)).status_code == 200
    both = api_keys("create", "both", "--scope", "publish", "--scope", "read")
    assert publish(event(), **bearer(both)).status_code == 202
    assert api.get("/events", {"topic": "a"}, **bearer(both)).status_code == 200


@pytest.mark.django_db
def test_protected_reads_need_a_key_even_when_none_exists(api, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "PROTECT_READS": True}
    assert api.get("/stats").status_code == 401
    assert api.get("/events", {"topic": "a"}).status_code == 401
    assert api.get("/openapi.json").status_code == 200  # the documentation stays public


@pytest.mark.django_db
def test_reads_stay_open_by_default_when_keys_exist(api):
    api_keys("create", "svc")
    assert api.get("/stats").status_code == 200


@pytest.mark.django_db
def test_the_command_refuses_a_duplicate_name_and_an_unknown_key():
    api_keys("create", "svc")
    with pytest.raises(CommandError, match="already exists"):
        api_keys("create", "svc")
    with pytest.raises(CommandError, match="No active key"):
        api_keys("revoke", "nobody")
