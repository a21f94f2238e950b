"""On a SQLite file the intake queue has a file of its own (events.routers), handed off once (events.handoff)."""

import sqlite3
import subprocess
import threading
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from events import counters, intake, store
from events.models import Event, IntakeBatch, StoredIntakeBatch
from events.routers import intake_alias, intake_has_own_database
from events.validation import parse_events
from harness.processes import PROJECT_DIR, manage, service_env
from tests.factories import event, events
from tests.polling import wait_for
from tests.servers import on_postgresql

SQLITE_ONLY = pytest.mark.skipif(on_postgresql(), reason="SQLite only: PostgreSQL keeps the queue in its database")
# How long a publish may take while the store is locked before the test gives up on it.
PUBLISH_DEADLINE = 60.0

pytestmark = pytest.mark.usefixtures("store_queue_drained")


def queue(*sent: dict, using: str | None = None) -> None:
    """Queue events as a publish does (on the intake database unless `using`), counted as received."""
    validated = parse_events(msgspec.json.encode(list(sent)), max_events=len(sent))
    with connections[using or intake_alias()].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {intake._table()} (accepted_at, event_count, body) VALUES (%s, %s, %s)",
            [connection.ops.adapt_datetimefield_value(timezone.now()), len(validated), intake.encode(validated)],
        )
    counters.add_received(Counter(item["topic"] for item in sent), using=using or intake_alias())


def totals() -> tuple[int, int, int, int]:
    read = counters.read_totals()
    return read.received, read.unique_processed, read.duplicate_dropped, counters.queued_total()


@pytest.mark.django_db
def test_publishes_queue_and_count_in_the_intake_database(publish, drain, stats):
    batch = events(3, topic="intake.file")
    assert publish(batch + batch[:1]).status_code == 202

    queued_in = {alias: IntakeBatch.objects.using(alias).count() for alias in connections}
    if intake_has_own_database():
        assert queued_in == {DEFAULT_DB_ALIAS: 0, intake_alias(): 1}
        assert counters.per_topic()["intake.file"].received == 4
    else:
        assert queued_in == {DEFAULT_DB_ALIAS: 1}
    drain()
    assert IntakeBatch.objects.count() == 0
    totals_now = stats()
    assert (totals_now["received"], totals_now["unique_processed"], totals_now["duplicate_dropped"]) == (4, 3, 1)
    assert totals_now["queued"] == 0


@SQLITE_ONLY
@pytest.mark.django_db
def test_a_consumer_that_dies_between_its_two_commits_is_followed_by_one_that_only_dequeues(monkeypatch):
    batch = events(3, topic="intake.crash")
    queue(*batch, batch[0])
    delete = intake.delete

    def die_before_dequeuing(batch_ids, using=None):
        raise SystemExit("killed between the store's commit and the queue's")

    monkeypatch.setattr(intake, "delete", die_before_dequeuing)
    with pytest.raises(SystemExit):
        store.process_next_batch(max_events=100)
    # Stored and recorded, still queued.
    assert Event.objects.filter(topic="intake.crash").count() == 3
    assert IntakeBatch.objects.count() == 1
    assert StoredIntakeBatch.objects.count() == 1
    assert totals() == (4, 3, 1, 0)

    monkeypatch.setattr(intake, "delete", delete)
    assert store.process_next_batch(max_events=100) is None  # nothing left to store: it only dequeued
    assert IntakeBatch.objects.count() == 0
    assert Event.objects.filter(topic="intake.crash").count() == 3
    assert totals() == (4, 3, 1, 0)


@SQLITE_ONLY
@pytest.mark.django_db
def test_a_claim_that_another_consumer_stored_meanwhile_stores_nothing(monkeypatch):
    queue(*events(2, topic="intake.race"))
    stale = intake.claim(100)  # read, then overtaken by another consumer:
    assert store.process_next_batch(max_events=100).unique == 2
    queue(*events(1, topic="intake.race"))
    assert store.process_next_batch(max_events=100).unique == 1  # its record of the first batch is dropped now
    assert StoredIntakeBatch.objects.filter(id=stale[0].id).count() == 0

    claims = iter([stale])
    monkeypatch.setattr(intake, "claim", lambda max_events, using=None: next(claims, []))
    queue(*events(1, topic="intake.other"))  # something queued, so the consumer looks
    assert store.process_next_batch(max_events=100) is None  # the stale claim: gone from the queue, not stored
    assert Event.objects.filter(topic="intake.race").count() == 3
    assert totals()[1] == 3


@SQLITE_ONLY
@pytest.mark.django_db
def test_batches_queued_in_the_store_s_database_by_an_earlier_version_are_stored_first(monkeypatch):
    earlier = events(2, topic="intake.upgrade")
    queue(*earlier, earlier[0], using=DEFAULT_DB_ALIAS)
    queue(event("intake.upgrade"))
    monkeypatch.setattr(store, "_store_queue_drained", False)

    first = store.process_next_batch(max_events=100)
    assert (first.unique, first.duplicates) == (2, 1)
    assert IntakeBatch.objects.using(DEFAULT_DB_ALIAS).count() == 0
    second = store.process_next_batch(max_events=100)
    assert (second.unique, second.duplicates) == (1, 0)
    assert store.process_next_batch(max_events=100) is None
    assert totals() == (4, 3, 1, 0)


@SQLITE_ONLY
def test_a_publish_commits_while_the_store_s_write_lock_is_held(processes, tmp_path):
    server = processes.server()
    store_file = Path(server.database_url.removeprefix("sqlite:///"))
    batch = events(50, topic="intake.beside")
    answers = []
    holder = sqlite3.connect(store_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the store's write lock, as a long consumer transaction holds it
    try:
        publisher = threading.Thread(target=lambda: answers.append(server.publish(batch).status_code))
        publisher.start()
        wait_for(lambda: answers, deadline=PUBLISH_DEADLINE, message="the publish to commit beside the store's lock")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answers == [202]
    stats = server.wait_until_processed(received=50)
    assert (stats["unique_processed"], stats["duplicate_dropped"]) == (50, 0)


@SQLITE_ONLY
def test_migrate_creates_both_files_and_database_names_one(tmp_path):
    store_file = tmp_path / "loggregator.sqlite3"
    env = service_env(f"sqlite:///{store_file}")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(manage(*args), cwd=PROJECT_DIR, env=env, capture_output=True, text=True)

    assert run("migrate", "--noinput", "--database", "default", "-v0").returncode == 0
    assert not (tmp_path / "loggregator-intake.sqlite3").exists()
    unapplied = run("migrate", "--check")
    assert unapplied.returncode == 1, unapplied.stdout + unapplied.stderr

    assert run("migrate", "--noinput", "-v0").returncode == 0
    assert run("migrate", "--check").returncode == 0
    with sqlite3.connect(tmp_path / "loggregator-intake.sqlite3") as intake_file:
        tables = {name for (name,) in intake_file.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events_intakebatch", "events_stats"} <= tables
    assert "events_event" not in tables
