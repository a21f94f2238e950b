"""GET /healthz (alive, no database) and GET /readyz (ready to work, or which check fails)."""

from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from events import health
from events.models import IntakeBatch
from events.routers import intake_alias
from tests.factories import events
from tests.servers import on_postgresql


def test_healthz_answers_without_touching_the_database(api):
    response = api.get("/healthz")  # no django_db mark: any query would fail the test
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


@pytest.mark.django_db
def test_readyz_reports_every_check_when_ready(api, publish):
    publish(events(3))
    response = api.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert list(body["checks"]) == ["database", "migrations", "consumer", "backlog"]
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["backlog"]["detail"] == "3 events queued"


@pytest.mark.django_db
def test_readyz_fails_when_no_consumer_progresses(api, publish, settings):
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "READY_MAX_QUEUE_AGE": 60.0}
    publish(events(3))
    IntakeBatch.objects.update(accepted_at=timezone.now() - timedelta(seconds=75))
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == "consumer"
    assert "waited 75 s (limit 60 s)" in body["checks"]["consumer"]["detail"]


@pytest.mark.django_db
def test_readyz_fails_when_the_backlog_is_full(api, publish, settings):
    publish(events(3))
    settings.LOGGREGATOR = {**settings.LOGGREGATOR, "MAX_QUEUED_EVENTS": 3}
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == "backlog"


@pytest.mark.django_db
def test_readyz_fails_while_a_migration_is_not_applied(api, monkeypatch):
    monkeypatch.setattr(health, "_migrated", False)
    (latest,) = (name for app, name in MigrationLoader(connection).graph.leaf_nodes() if app == "events")
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("DELETE FROM django_migrations WHERE app = 'events' AND name = %s", [latest])
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == "migrations"
    assert "1 migrations are not applied" in body["checks"]["migrations"]["detail"]
    assert "consumer" not in body["checks"]


@pytest.mark.skipif(on_postgresql(), reason="SQLite only: PostgreSQL keeps the queue in its database")
@pytest.mark.django_db
def test_readyz_fails_while_the_intake_queue_s_file_misses_a_migration(api, monkeypatch):
    monkeypatch.setattr(health, "_migrated", False)
    (latest,) = (name for app, name in MigrationLoader(connection).graph.leaf_nodes() if app == "events")
    with connections[intake_alias()].cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("DELETE FROM django_migrations WHERE app = 'events' AND name = %s", [latest])
    response = api.get("/readyz")
    assert response.status_code == 503
    assert "1 migrations are not applied to intake" in response.json()["checks"]["migrations"]["detail"]
