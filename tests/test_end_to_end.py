"""Against real gunicorn processes: publish, stop, crash, restart; nothing acknowledged is lost or doubled."""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import event, events
from tests.polling import wait_for
from tests.traffic import Publisher, assert_exact, stored_ids


def test_concurrent_publishers_with_overlapping_duplicates_get_exact_counts(aggregator_server):
    unique = events(2000, topic="e2e.orders") + events(1000, topic="e2e.refunds")
    rng = random.Random(7)
    resent = rng.sample(unique, 900)
    stream = unique + resent
    rng.shuffle(stream)
    # Batches and single events, from 6 connections at once.
    bodies = [stream[i : i + 250] for i in range(0, 2500, 250)] + stream[2500:]
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda body: aggregator_server.publish(body).status_code, bodies))
    assert set(statuses) == {202}

    assert_exact(aggregator_server.wait_until_processed(), unique=3000, duplicates=900)
    assert sorted(stored_ids(aggregator_server, "e2e.orders")) == sorted(
        e["event_id"] for e in unique if e["topic"] == "e2e.orders"
    )


@pytest.mark.parametrize("kills", [3])
def test_sigkill_during_publishing_loses_nothing_acknowledged_and_doubles_nothing(aggregator_server, kills):
    batches = [events(400, topic="e2e.kill") for _ in range(60)]
    rng = random.Random(11)
    # Every batch goes out twice: a retry of an earlier batch follows each new one.
    bodies = []
    for i, body in enumerate(batches):
        bodies.append(body)
        bodies.append(batches[rng.randrange(i + 1)])
    publisher = Publisher(aggregator_server.url, bodies, retry=True)
    publisher.start()
    for _ in range(kills):
        acknowledged_before = len(publisher.acknowledged)
        wait_for(lambda: len(publisher.acknowledged) > acknowledged_before + 2, message="publishes between kills")
        aggregator_server.kill()
        aggregator_server.start()
    publisher.join()
    assert publisher.unanswered, "no request was cut off: the kills missed the traffic"

    # The retrying publisher got every request acknowledged in the end, so
    # every event is stored, once; resends only add duplicates.
    stats = aggregator_server.wait_until_processed()
    stored = stored_ids(aggregator_server, "e2e.kill")
    sent = {e["event_id"] for body in bodies for e in body}
    assert len(stored) == len(set(stored))
    assert set(stored) == sent
    assert_exact(stats, unique=len(sent), duplicates=stats["received"] - len(sent))
    assert stats["received"] >= sum(len(body) for body in bodies)


def test_a_backlog_left_by_a_crash_is_processed_after_restart_without_new_traffic(processes):
    # Consumer off, so the backlog is certainly still queued when the server dies.
    server = processes.server(LOGGREGATOR_INPROCESS_CONSUMER="false")
    batch = events(1000, topic="e2e.backlog")
    assert server.publish(batch).status_code == 202
    assert server.publish(batch[:250]).status_code == 202
    server.kill()

    server.env["LOGGREGATOR_INPROCESS_CONSUMER"] = "true"
    server.start()
    assert_exact(server.wait_until_processed(), unique=1000, duplicates=250)


def test_a_consumer_killed_mid_batch_leaves_its_batch_for_the_next_one(processes):
    server = processes.server(LOGGREGATOR_INPROCESS_CONSUMER="false")
    consumer = processes.consumer(server, "--batch-size", "2000")
    payload = {f"k{i}": "v" * 20 for i in range(20)}
    batches = [events(2000, topic="e2e.consumer", payload=payload) for _ in range(15)]
    for body in batches + batches[:5]:
        assert server.publish(body).status_code == 202

    consumer.start()
    wait_for(lambda: server.stats()["unique_processed"] > 0, deadline=120, interval=0.005)
    consumer.kill()
    mid = server.stats()
    assert mid["queued"] > 0, "the consumer finished before it could be killed"

    consumer = processes.consumer(server, "--once", start=True)
    assert consumer.process.wait(300) == 0
    assert_exact(server.stats(), unique=30_000, duplicates=10_000)
    assert len(set(stored_ids(server, "e2e.consumer"))) == 30_000


def test_a_single_event_is_processed_soon_after_its_202(processes):
    # Soon: each publish wakes the idle consumer, whose own next look at the
    # queue is an hour away; without the wake-up the wait below times out.
    server = processes.server(workers=1, LOGGREGATOR_CONSUMER_POLL_INTERVAL="3600")
    for published in range(1, 4):
        assert server.publish(event("e2e.latency")).status_code == 202
        assert_exact(server.wait_until_processed(received=published), unique=published, duplicates=0)
