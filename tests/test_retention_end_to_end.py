"""Retention in real processes: pruning while publishes arrive, and a prune killed mid-way."""

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.factories import event
from tests.polling import wait_for
from tests.servers import AggregatorServer, ManagedProcess, on_postgresql, postgresql_connection
from tests.traffic import Publisher, assert_exact, stored_ids

pytestmark = pytest.mark.slow


def aged(count: int, topic: str, *, days: float) -> list[dict]:
    start = datetime.now(UTC) - timedelta(days=days)
    return [event(topic, timestamp=(start + timedelta(seconds=i)).isoformat()) for i in range(count)]


def query(database_url: str, sql: str) -> tuple:
    """One row of a query on a service database, from outside its processes."""
    if on_postgresql():
        with postgresql_connection(database_url) as connection:
            return connection.execute(sql).fetchone()
    with sqlite3.connect(urlsplit(database_url).path) as connection:
        return connection.execute(sql).fetchone()


def table_state(database_url: str) -> dict:
    events, tombstones = (
        query(database_url, f"SELECT COUNT(*) FROM {table}")[0] for table in ("events_event", "events_prunedevent")
    )
    unique, pruned = query(database_url, "SELECT SUM(unique_processed), SUM(pruned) FROM events_stats")
    return {"events": events, "tombstones": tombstones, "unique": int(unique), "pruned": int(pruned)}


def send(server: AggregatorServer, bodies: list[list[dict]], publishers: int = 4) -> None:
    threads = [Publisher(server.url, bodies[i::publishers]) for i in range(publishers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not thread.unanswered for thread in threads)


def test_pruning_during_publishes_keeps_copies_of_pruned_events_duplicates_and_counts_exact(tmp_path, service_database):
    server = AggregatorServer(
        tmp_path,
        database_url=service_database.url,
        LOGGREGATOR_RETENTION="1d",
        LOGGREGATOR_PRUNE_INTERVAL="0.05",
        LOGGREGATOR_PRUNE_CHUNK_EVENTS="25",
    )
    server.start()
    try:
        old, new = aged(1500, "ret.old", days=1.5), aged(1500, "ret.new", days=0.01)  # tombstones: 2 days
        first = [old[i : i + 25] + new[i : i + 25] for i in range(0, 750, 25)]
        send(server, first)
        wait_for(lambda: server.stats()["pruned"] > 0, message="the first prune")

        # Copies of events that are pruned by now, or stored, or still queued, beside new ones.
        copies = old[:750] + new[:750]
        second = [old[i : i + 25] + new[i : i + 25] + copies[2 * i - 1500 : 2 * i - 1450] for i in range(750, 1500, 25)]
        send(server, second)
        server.wait_until_processed(received=3000 + len(copies))
        stats = wait_for(lambda: (s := server.stats())["pruned"] == 1500 and s, message="every old event pruned")

        assert_exact(stats, unique=3000, duplicates=len(copies))
        assert (stats["stored"], stats["topics"]) == (1500, ["ret.new"])
        assert stored_ids(server, "ret.old") == []
        assert sorted(stored_ids(server, "ret.new")) == sorted(e["event_id"] for e in new)
    finally:
        server.stop()


def test_a_prune_killed_mid_way_loses_nothing_else_and_counts_exactly(tmp_path, service_database):
    server = AggregatorServer(tmp_path, database_url=service_database.url)  # no retention: it only stores
    server.start()
    old, young = aged(3000, "kill.old", days=1.5), aged(500, "kill.young", days=0.01)
    try:
        send(server, [old[i : i + 500] for i in range(0, 3000, 500)] + [young])
        server.wait_until_processed(received=3500)
    finally:
        server.stop()

    pruner = ManagedProcess("prune", tmp_path, {**server.env, "LOGGREGATOR_RETENTION": "1d", "PGAPPNAME": "prune"})
    prune = [sys.executable, "manage.py", "prune", "--chunk-events", "50"]
    if on_postgresql():
        # Block the prune inside its first chunk's transaction (after its DELETE, at the
        # counters), so the kill lands mid-transaction for certain.
        with postgresql_connection(server.database_url) as blocker:
            blocker.execute("LOCK TABLE events_stats IN SHARE MODE")
            pruner.spawn(prune)
            # This test's prune: parallel tests' sessions are in databases of their own.
            waiting = (
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'prune' AND wait_event_type = 'Lock'"
            )
            wait_for(lambda: query(server.database_url, waiting)[0], message="the prune to wait on the counters")
            pruner.kill()
        assert table_state(server.database_url) == {"events": 3500, "tombstones": 0, "unique": 3500, "pruned": 0}
    else:
        pruner.spawn(prune)
        wait_for(lambda: table_state(server.database_url)["pruned"] >= 500, message="some chunks to commit")
        pruner.kill()
        state = table_state(server.database_url)
        assert state["pruned"] < 3000, "the prune finished before the kill"
        # Every committed chunk deleted, tombstoned and counted its events together.
        assert state["events"] + state["pruned"] == state["unique"] == 3500
        assert state["tombstones"] == state["pruned"]

    pruner.spawn(prune)  # the next prune finishes the work
    assert pruner.process.wait(120) == 0, pruner.log()
    assert table_state(server.database_url) == {"events": 500, "tombstones": 3000, "unique": 3500, "pruned": 3000}
