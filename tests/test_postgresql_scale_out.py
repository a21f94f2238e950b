"""Scale-out on PostgreSQL: many consumers and servers on one database, and still one truth.

The tests line processes up with table locks taken from outside, watched in
pg_stat_activity (each consumer's sessions carry its name), so the races they
set up happen on every run rather than by chance.
"""

import random
import re
from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests.factories import events
from tests.polling import wait_for
from tests.servers import AggregatorServer, postgresql_connection, requires_postgresql
from tests.traffic import assert_exact, stored_ids

pytestmark = requires_postgresql()

STORED = re.compile(r"Stored (\d+) unique events, dropped (\d+) duplicates\.")


def waiting_on_a_lock(observer: psycopg.Connection) -> set[str]:
    """The application names of the sessions that wait for a lock."""
    rows = observer.execute(
        "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchall()
    return {name for (name,) in rows}


def shuffled_with_resends(unique: list[dict], resends: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    stream = unique + rng.sample(unique, resends)
    rng.shuffle(stream)
    return stream


def assert_stored_once(server: AggregatorServer, unique: list[dict]) -> None:
    for topic in {e["topic"] for e in unique}:
        stored = stored_ids(server, topic)
        assert len(stored) == len(set(stored))
        assert set(stored) == {e["event_id"] for e in unique if e["topic"] == topic}


def test_four_consumers_racing_on_one_backlog_store_each_event_once(processes, service_database):
    server = processes.server(LOGGREGATOR_INPROCESS_CONSUMER="false")
    # One body per transaction, so the backlog is shared out in many small claims.
    consumers = [processes.consumer(server, "--batch-size", "500", name=f"consumer-{n}") for n in range(4)]
    with (
        postgresql_connection(service_database.url) as gate,
        postgresql_connection(service_database.url, autocommit=True) as observer,
    ):
        unique = events(8000, topic="race.orders") + events(4000, topic="race.refunds")
        # Duplicates spread over the whole backlog: concurrent transactions
        # insert the same keys, the case that could deadlock or double-count.
        stream = shuffled_with_resends(unique, 4000, seed=3)
        for start in range(0, len(stream), 500):
            assert server.publish(stream[start : start + 500]).status_code == 202

        # The start line: the first look at the queue waits until all four are there.
        gate.execute("LOCK TABLE events_intakebatch IN ACCESS EXCLUSIVE MODE")
        for consumer in consumers:
            consumer.start()
        names = {consumer.name for consumer in consumers}
        wait_for(lambda: names <= waiting_on_a_lock(observer), message="all four consumers at the start line")
        gate.rollback()

        assert_exact(server.wait_until_processed(), unique=12_000, duplicates=4000)
        assert_stored_once(server, unique)
        for consumer in consumers:
            assert consumer.stop() == 0
        logs = [consumer.log() for consumer in consumers]
        results = [tuple(int(n) for n in STORED.search(log).groups()) for log in logs]
        assert sum(unique for unique, _ in results) == 12_000
        assert sum(duplicates for _, duplicates in results) == 4000
        assert sum(1 for result in results if result != (0, 0)) >= 2, f"no race happened: {results}"
        # Not even a retried transaction: no deadlock, no failure.
        assert not [log for log in logs if "Traceback" in log]


def test_a_consumer_killed_mid_batch_leaves_its_batch_to_another_running_consumer(processes, service_database):
    server = processes.server(LOGGREGATOR_INPROCESS_CONSUMER="false")
    doomed = processes.consumer(server, "--batch-size", "1000", name="consumer-doomed")
    survivor = processes.consumer(server, "--batch-size", "1000", name="consumer-survivor")
    with (
        postgresql_connection(service_database.url) as blocker,
        postgresql_connection(service_database.url, autocommit=True) as observer,
    ):
        batches = [events(1000, topic="kill.orders") for _ in range(6)]
        for body in batches + batches[:2]:
            assert server.publish(body).status_code == 202

        # Hold the counters: a consumer that has claimed a batch and inserted
        # its events then waits there, in the middle of its transaction.
        blocker.execute("LOCK TABLE events_stats IN SHARE MODE")
        doomed.start()
        wait_for(lambda: doomed.name in waiting_on_a_lock(observer), message="the first consumer mid-batch")
        # The second skips the batch the first holds and takes the next one.
        survivor.start()
        wait_for(lambda: survivor.name in waiting_on_a_lock(observer), message="the second consumer mid-batch")
        doomed.kill()
        blocker.rollback()

        assert_exact(server.wait_until_processed(), unique=6000, duplicates=2000)
        assert_stored_once(server, [e for body in batches for e in body])
        assert survivor.stop() == 0
        # The survivor stored everything, the killed consumer's batch included; nothing of the killed one counts.
        assert "Stored 6000 unique events, dropped 2000 duplicates." in survivor.log()


def test_two_servers_on_one_database_count_exactly_with_publishers_spread_over_both(processes):
    # No balancer: each publisher request goes to one server or the other; both run their consumers.
    servers = [processes.server(name=f"gunicorn-{n}") for n in "ab"]
    unique = events(3000, topic="two.orders") + events(1500, topic="two.refunds")
    stream = shuffled_with_resends(unique, 1500, seed=5)
    # Batches and single events, from 6 connections at once.
    bodies = [stream[start : start + 250] for start in range(0, 5500, 250)] + stream[5500:]
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda n: servers[n % 2].publish(bodies[n]).status_code, range(len(bodies))))
    assert set(statuses) == {202}

    for server in servers:
        assert_exact(server.wait_until_processed(received=6000), unique=4500, duplicates=1500)
        assert_stored_once(server, unique)
    # Publishers and four consumer threads on shared counter rows: no deadlock, no retried transaction.
    assert not [server.name for server in servers if "Traceback" in server.log()]
