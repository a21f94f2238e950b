"""Fault tests against real processes: SIGKILL and SIGTERM under load, many publishers at once.

The CI-sized runs of scripts/crash_test.py (which runs 100,000 events by hand).
"""

import random
import signal
import threading

import pytest
import requests

from tests.factories import events
from tests.polling import wait_for
from tests.traffic import Publisher, assert_exact, run_crash_test, stored_ids

pytestmark = pytest.mark.slow


def test_sigkill_to_gunicorn_at_random_moments_loses_nothing_acknowledged_and_doubles_nothing(processes):
    server = processes.server()
    report = run_crash_test(server, scenario="web", unique=4000, kills=3, connections=4, seed=5)
    assert report.kills == 3
    assert report.unanswered_requests or report.client_retries, "the kills missed the traffic"


def test_sigkill_to_run_consumer_mid_batch_loses_nothing_and_doubles_nothing(processes):
    server = processes.server(LOGGREGATOR_INPROCESS_CONSUMER="false")
    report = run_crash_test(
        server, scenario="consumer", unique=6000, kills=3, connections=4, seed=6,
        consumer_args=("--batch-size", "1000"),
    )  # fmt: skip
    assert report.kills == 3
    # Every request was answered: only the consumer died.
    assert report.unanswered_requests == 0 and report.client_retries == 0


def test_eight_publishers_sending_each_event_three_times_at_once_get_exact_counts(processes):
    server = processes.server(workers=4)
    unique = events(3000, topic="conc.a") + events(3000, topic="conc.b")
    rng = random.Random(8)
    streams = [[] for _ in range(8)]
    for e in unique:
        for publisher in rng.sample(range(8), 3):
            streams[publisher].append(e)
    for stream in streams:
        rng.shuffle(stream)
    barrier = threading.Barrier(8)
    statuses = [[] for _ in range(8)]

    def send(index):
        session = requests.Session()
        barrier.wait()
        stream = streams[index]
        for start in range(0, len(stream), 150):
            response = session.post(f"{server.url}/publish", json=stream[start : start + 150], timeout=60)
            statuses[index].append(response.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {s for per in statuses for s in per} == {202}
    assert_exact(server.wait_until_processed(received=18_000), unique=6000, duplicates=12_000)
    assert sorted(stored_ids(server, "conc.a")) == sorted(e["event_id"] for e in unique[:3000])


def test_sigterm_to_run_consumer_mid_backlog_commits_its_batch_and_exits_0(processes):
    server = processes.server(LOGGREGATOR_INPROCESS_CONSUMER="false")
    consumer = processes.consumer(server, "--batch-size", "1000")
    batches = [events(1000, topic="term.c") for _ in range(20)]
    for body in batches + batches[:4]:
        assert server.publish(body).status_code == 202
    consumer.start()
    wait_for(lambda: server.stats()["unique_processed"] > 0, interval=0.005, message="the consumer to start")
    assert consumer.stop(signal.SIGTERM) == 0
    assert "stopping after the current batch" in consumer.log()
    stopped = server.stats()
    assert stopped["queued"] > 0, "the consumer drained everything before the signal"
    # Whatever it stored was committed whole: batches of 1000, counters in step.
    assert (stopped["unique_processed"] + stopped["duplicate_dropped"]) % 1000 == 0

    consumer = processes.consumer(server, "--once", start=True)
    assert consumer.process.wait(300) == 0
    assert_exact(server.stats(), unique=20_000, duplicates=4000)


def test_sigterm_to_gunicorn_under_load_answers_every_request_it_committed(processes):
    server = processes.server(workers=2)
    publishers = [Publisher(server.url, [events(300, topic=f"term.w{i}") for _ in range(200)]) for i in range(6)]
    try:
        for publisher in publishers:
            publisher.start()
        wait_for(lambda: sum(len(p.acknowledged) for p in publishers) >= 12, message="publishes under way")
        assert server.stop(signal.SIGTERM) == 0
        for publisher in publishers:
            publisher.stop.set()
            publisher.join()

        server.start()
        stats = server.wait_until_processed()
        stored = {i for topic in stats["topics"] for i in stored_ids(server, topic)}
    finally:
        for publisher in publishers:
            publisher.stop.set()
    acknowledged = [body for p in publishers for body in p.acknowledged]
    # Exact: every request the server committed got its 202. A request cut off
    # after its commit would show as received events nobody was told about.
    assert stats["received"] == 300 * len(acknowledged)
    assert_exact(stats, unique=300 * len(acknowledged), duplicates=0)
    assert stored == {e["event_id"] for body in acknowledged for e in body}


def test_gunicorn_says_where_it_listens_and_on_sigterm_closes_each_socket_once(processes):
    # uvloop closes a listening socket's descriptor itself; a second close of
    # the same number by gunicorn's socket wrapper fails with EBADF, or closes
    # whatever another thread opened under that number meanwhile.
    server = processes.server(workers=2)
    wait_for(lambda: server.log().count("Started server process") == 2, message="both workers serving")
    assert server.stop(signal.SIGTERM) == 0
    log = server.log()
    assert f"Workers listen at: 127.0.0.1:{server.port} (SO_REUSEPORT)" in log, log
    assert log.count("Shutting down\n") == 2, log  # both workers took the graceful path
    assert "Error while closing socket" not in log, log
