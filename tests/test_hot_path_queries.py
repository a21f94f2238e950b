"""The hot paths cost a fixed few statements, however many events they carry.

/publish and the consumer's process_next_batch run for every request and
every batch: a statement per event (or per row read back) would show here
before it shows in the benchmark.
"""

import re
from contextlib import ExitStack, contextmanager
from unittest import mock

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

from events import backpressure, store
from events.routers import intake_has_own_database
from tests.factories import event, events

pytestmark = pytest.mark.usefixtures("store_queue_drained")


@contextmanager
def statements():
    """The statements sent, in order: through Django's cursors, and the events inserts that go around them.

    Those use the driver itself: a plain psycopg cursor on PostgreSQL, the
    sqlite3 connection on SQLite (seen through its trace callback).

    An executemany() is one statement sent many times ("N times: ...").
    Statements to the intake queue's own database (a SQLite file's: see
    events.routers) start with "intake: ".
    """
    sent: list[str] = []
    through_django_now = False
    execute = psycopg.Cursor.execute

    def through_django(alias):
        def record(run, sql, params, many, context):
            nonlocal through_django_now
            sent.append(on(alias, f"{len(params)} times: {sql}" if many else sql))
            through_django_now = True
            try:
                return run(sql, params, many, context)
            finally:
                through_django_now = False

        return record

    def through_psycopg(cursor, query, *args, **kwargs):
        if type(cursor) is psycopg.Cursor:  # Django's own cursors are subclasses, counted above
            sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    def through_sqlite3(alias):
        def record(sql):
            if not through_django_now:
                sent.append(on(alias, sql))

        return record

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(psycopg.Cursor, "execute", through_psycopg))
        for database in connections.all():
            database.ensure_connection()
            stack.enter_context(database.execute_wrapper(through_django(database.alias)))
            if database.vendor == "sqlite":
                database.connection.set_trace_callback(through_sqlite3(database.alias))
                stack.callback(database.connection.set_trace_callback, None)
        yield sent


def on(alias: str, statement: str) -> str:
    return statement if alias == DEFAULT_DB_ALIAS else f"{alias}: {statement}"


def on_intake(*statements: str) -> list[str]:
    """The statements as sent to the intake queue's database."""
    return [f"intake: {statement}" if intake_has_own_database() else statement for statement in statements]


def kinds(sent: list[str]) -> list[str]:
    """Each statement's first words, enough to tell what it does (savepoint names left out)."""
    kinds = []
    for sql in sent:
        words = re.sub(r'"s\d+_x\d+"', "", sql).replace('"', "").split()
        kinds.append(" ".join(words[: 4 if words[0] == "intake:" else 3]))
    return kinds


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 1000])
def test_a_publish_is_a_fixed_few_statements_whatever_its_size(publish, size, monkeypatch):
    monkeypatch.setattr(backpressure, "RECOUNT_INTERVAL", 3600)
    # The first request also looks up whether API keys exist and counts the
    # backlog; both are reused (the backlog while far under its limit).
    publish(event())
    with statements() as sent:
        assert publish(events(size, topic="a") + events(size, topic="b")).status_code == 202

    # One transaction (a savepoint inside the test's) with the intake row and
    # every topic's counters in one statement, and on PostgreSQL the NOTIFY
    # that wakes consumers.
    expected = on_intake(
        "SAVEPOINT",
        "1 times: INSERT",
        "2 times: INSERT",
        *(["SELECT pg_notify('loggregator_intake', '')"] if connection.vendor == "postgresql" else []),
        "RELEASE SAVEPOINT",
    )
    assert kinds(sent) == expected, " | ".join(kinds(sent))


@pytest.mark.django_db(transaction=True)
def test_a_publish_outside_a_transaction_is_one_statement_on_postgresql(publish, monkeypatch):
    monkeypatch.setattr(backpressure, "RECOUNT_INTERVAL", 3600)
    publish(event())
    with statements() as sent:
        assert publish(events(3, topic="a") + events(2, topic="b")).status_code == 202

    # PostgreSQL: the intake row, the counters and the NOTIFY in one
    # statement, committed on its own (one round trip). SQLite: the same
    # transaction as above.
    if connection.vendor == "postgresql":
        expected = ["WITH queued AS"]
    else:
        expected = on_intake("BEGIN IMMEDIATE", "1 times: INSERT", "2 times: INSERT", "COMMIT")
    assert kinds(sent) == expected, " | ".join(kinds(sent))


@pytest.mark.django_db
@pytest.mark.parametrize("size", [10, 2000])
def test_storing_a_batch_is_a_fixed_few_statements_whatever_its_size(publish, size):
    publish(events(size, topic="a") + events(size // 2, topic="b"))
    publish(events(size, topic="a"))
    with statements() as sent:
        stored = store.process_next_batch(max_events=10 * size)
    assert (stored.intake_batches, stored.unique) == (2, 2 * size + size // 2)

    # A look at the queue, the claim (candidates, then their bodies), then one
    # transaction: the removal from the queue, the events, the counters of
    # every topic. PostgreSQL claims inside the transaction (the rows locked);
    # SQLite reads before taking its write lock. SQLite inserts per topic, so
    # the row count tells each topic's new rows, up to 1024 rows a statement
    # (the rest in powers of two); PostgreSQL in one statement. The store
    # commit (for the live tail) draws its id first and is written last, on
    # PostgreSQL under the position lock, with the NOTIFY for streams.
    #
    # With the queue in a file of its own (SQLite), the store's transaction
    # confirms the batches are still queued and not yet stored, records them
    # (events.handoff), and the queue's own transaction removes them after.
    claim = ["SELECT id, event_count", "SELECT id, body"]
    if connection.vendor == "postgresql":
        before, within, after = [], [*claim, "DELETE FROM events_intakebatch"], []
        commit_id = ["SELECT nextval(pg_get_serial_sequence('events_storecommit', 'id'))"]
        inserts = ["WITH arrived AS"]
        commit = [
            "SELECT pg_advisory_xact_lock(%s)",
            "INSERT INTO events_storecommit",
            "SELECT pg_notify('loggregator_stored', '')",
        ]
    else:
        before = on_intake(*claim)
        within = [
            "PRAGMA cache_size =",  # the consumer's page cache, set per batch
            *on_intake("SELECT count(*) FROM"),
            "SELECT id FROM",
            "DELETE FROM events_storedintakebatch",
            "2 times: INSERT",
        ]
        after = on_intake("SAVEPOINT", "DELETE FROM events_intakebatch", "RELEASE SAVEPOINT")
        commit_id = ["SELECT COALESCE(MAX(id), 0)"]
        inserts = ["INSERT INTO events_event"] * sum(
            rows // 1024 + bin(rows % 1024).count("1") for rows in (size * 2, size // 2)
        )
        commit = ["INSERT INTO events_storecommit"]
    expected = [
        *on_intake("SELECT 1 FROM"),
        *before,
        "SAVEPOINT",
        *within,
        *commit_id,
        *inserts,
        "SELECT %s AS",  # any tombstones of pruned events? (none: nothing more to do)
        "2 times: INSERT",
        *commit,
        "RELEASE SAVEPOINT",
        *after,
    ]
    assert kinds(sent) == expected, " | ".join(kinds(sent))


@pytest.mark.django_db
def test_an_empty_queue_costs_one_read():
    with statements() as sent:
        assert store.process_next_batch(max_events=5000) is None
    assert kinds(sent) == on_intake("SELECT 1 FROM")
