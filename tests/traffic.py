"""Traffic for fault tests, and the checks that every acknowledged event is stored exactly once.

Publishers record what each request got back; the checks also want the counters exact.

Shared by tests/test_end_to_end.py, tests/test_faults.py and scripts/crash_test.py.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import requests

from publisher.client import AggregatorClient, PublishError
from tests.factories import events
from tests.polling import wait_for
from tests.servers import AggregatorServer, ConsumerProcess

Body = list[dict] | dict


def stored_ids(server: AggregatorServer, topic: str) -> list[str]:
    """Every event_id listed for a topic, through the paginated API."""
    ids, url = [], f"{server.url}/events?topic={topic}&limit=5000"
    while url:
        page = server.session.get(url, timeout=60).json()
        ids += [e["event_id"] for e in page["events"]]
        url = page["next"]
    return ids


def assert_exact(stats: dict, *, unique: int, duplicates: int):
    assert stats["queued"] == 0
    assert stats["unique_processed"] == unique
    assert stats["duplicate_dropped"] == duplicates
    assert stats["received"] == unique + duplicates


def event_ids(body: Body) -> list[str]:
    return [e["event_id"] for e in (body if isinstance(body, list) else [body])]


class Publisher(threading.Thread):
    """Sends its requests one after another and records what each got back.

    With `retry`, an unanswered request is sent again until it is acknowledged,
    as an at-least-once publisher does while the server restarts.
    """

    def __init__(self, url: str, requests_to_send: list[Body], *, retry: bool = False):
        super().__init__()
        self.url = url
        self.pending = requests_to_send
        self.retry = retry
        self.acknowledged: list[Body] = []
        self.unanswered: list[Body] = []
        self.stop = threading.Event()

    def run(self):
        session = requests.Session()
        for body in self.pending:
            while not self.stop.is_set():
                try:
                    response = session.post(f"{self.url}/publish", json=body, timeout=60)
                    acknowledged = response.status_code == 202
                except requests.RequestException:
                    acknowledged = False
                if acknowledged:
                    self.acknowledged.append(body)
                    break
                self.unanswered.append(body)
                if not self.retry:
                    # Move on to the next request, but only once the server is
                    # back, rather than spend the whole stream while it restarts.
                    self._wait_until_reachable(session)
                    break
                self.stop.wait(0.05)  # retry pacing while the server is down

    def _wait_until_reachable(self, session: requests.Session) -> None:
        while not self.stop.wait(0.05):
            try:
                session.get(f"{self.url}/stats", timeout=10)
                return
            except requests.RequestException:
                pass


class ClientPublisher(threading.Thread):
    """Publishes through the `publisher` app's AggregatorClient, which retries until acknowledged."""

    def __init__(self, url: str, requests_to_send: list[Body]):
        super().__init__()
        self.pending = requests_to_send
        self.stop = threading.Event()
        self.client = AggregatorClient(url, timeout=60, backoff_base=0.05, backoff_cap=0.5, stop=self.stop)
        self.acknowledged: list[Body] = []
        self.retries = 0
        # Events of failed attempts that may still have been committed.
        self.maybe_landed_events = 0
        self.failures: list[Exception] = []

    def run(self):
        with self.client:
            for body in self.pending:
                try:
                    result = self.client.publish(body)
                except PublishError as exc:
                    self.failures.append(exc)
                    return
                self.acknowledged.append(body)
                self.retries += result.attempts - 1
                self.maybe_landed_events += result.maybe_landed * len(event_ids(body))


def make_traffic(
    unique: int, *, connections: int, topics: int = 4, duplicate_share: float = 0.25, seed: int = 1
) -> list[list[Body]]:
    """`unique` events over `topics` topics plus `duplicate_share` resent copies, as each connection's requests.

    Shuffled and cut into mostly batches of 50 to 400, with some single events.
    """
    rng = random.Random(seed)
    per_topic = unique // topics
    originals = [e for t in range(topics) for e in events(per_topic + (t < unique % topics), topic=f"crash.t{t}")]
    stream = originals + rng.sample(originals, round(len(originals) * duplicate_share / (1 - duplicate_share)))
    rng.shuffle(stream)
    bodies: list[Body] = []
    position = 0
    while position < len(stream):
        if rng.random() < 0.1:
            bodies.append(stream[position])
            position += 1
        else:
            size = rng.randint(50, 400)
            bodies.append(stream[position : position + size])
            position += size
    return [bodies[i::connections] for i in range(connections)]


@dataclass
class CrashReport:
    scenario: str
    kills: int = 0
    sent_events: int = 0
    unique_sent: int = 0
    acknowledged_events: int = 0
    unanswered_requests: int = 0
    client_retries: int = 0
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        s = self.stats
        return (
            f"{self.scenario}: {self.kills} kills, {self.sent_events} events sent ({self.unique_sent} unique), "
            f"{self.acknowledged_events} acknowledged at first try or by retry, {self.unanswered_requests} "
            f"requests unanswered, {self.client_retries} client retries; received {s['received']}, "
            f"unique_processed {s['unique_processed']}, duplicate_dropped {s['duplicate_dropped']}, "
            f"queued {s['queued']}; {self.seconds:.0f} s"
        )


def run_crash_test(
    server: AggregatorServer,
    *,
    scenario: str,
    unique: int,
    kills: int,
    connections: int = 4,
    seed: int = 1,
    consumer_args: tuple[str, ...] = ("--batch-size", "2000"),
    log=lambda message: None,
) -> CrashReport:
    """Publish while SIGKILLing the web server ("web") or a dedicated run_consumer ("consumer").

    Half the connections send once and record the answer; the other half go
    through the retrying publisher client. Raises AssertionError on any loss,
    double store or inexact counter.
    """
    rng = random.Random(seed)
    report = CrashReport(scenario=scenario)
    started = time.monotonic()
    traffic = make_traffic(unique, connections=connections, seed=seed)
    once = [Publisher(server.url, bodies) for bodies in traffic[: connections // 2]]
    retrying = [ClientPublisher(server.url, bodies) for bodies in traffic[connections // 2 :]]
    publishers = once + retrying
    consumer = ConsumerProcess(server, *consumer_args) if scenario == "consumer" else None
    if consumer:
        consumer.start()

    def acknowledged() -> int:
        return sum(len(p.acknowledged) for p in publishers)

    def processed() -> int:
        return server.stats()["unique_processed"]

    def idle() -> bool:
        return not any(p.is_alive() for p in publishers)

    for publisher in publishers:
        publisher.start()
    try:
        # Random moments spread over the run: after a number of acknowledged
        # requests (web) or of stored events (consumer) between 5% and 95%.
        total = sum(len(bodies) for bodies in traffic) if scenario == "web" else unique
        moments = sorted(rng.sample(range(total // 20, total * 19 // 20), kills))
        restarted_at = 0
        for kill, moment in enumerate(moments):
            if scenario == "web":
                wait_for(lambda: acknowledged() >= moment or idle(), message="publishes before the next kill")
                server.kill()
                log(f"kill {kill + 1}: SIGKILL to gunicorn after {acknowledged()} acknowledged requests")
                server.start()
            else:
                # Mid-batch: the restarted consumer has committed a batch and
                # is storing the next.
                wait_for(
                    lambda: processed() >= max(moment, restarted_at + 1) or (idle() and not server.stats()["queued"]),
                    interval=0.005,
                    message="the consumer to store events before the next kill",
                )
                consumer.kill()
                restarted_at = processed()
                log(
                    f"kill {kill + 1}: SIGKILL to run_consumer at {processed()} stored, "
                    f"{server.stats()['queued']} queued"
                )
                consumer.start()
            report.kills += 1
        for publisher in publishers:
            publisher.join()
        stats = server.wait_until_processed()
    finally:
        for publisher in publishers:
            publisher.stop.set()
        if consumer:
            consumer.kill()

    report.seconds = time.monotonic() - started
    report.stats = stats
    sent = [body for bodies in traffic for body in bodies]
    sent_ids = [i for body in sent for i in event_ids(body)]
    report.sent_events, report.unique_sent = len(sent_ids), len(set(sent_ids))
    acked = [body for p in publishers for body in p.acknowledged]
    acked_ids = {i for body in acked for i in event_ids(body)}
    report.acknowledged_events = sum(len(event_ids(body)) for body in acked)
    report.unanswered_requests = sum(len(p.unanswered) for p in once)
    report.client_retries = sum(p.retries for p in retrying)
    assert not any(p.failures for p in retrying), [p.failures for p in retrying]
    assert all(len(p.acknowledged) == len(p.pending) for p in retrying), "a retrying publisher gave up"

    stored = [i for topic in stats["topics"] for i in stored_ids(server, topic)]
    # Exactly once: no event_id stored twice, and the counters agree with the rows.
    assert len(stored) == len(set(stored))
    assert_exact(stats, unique=len(stored), duplicates=stats["received"] - len(stored))
    # Every acknowledged event is stored; nothing that was never sent is.
    assert acked_ids <= set(stored)
    assert set(stored) <= set(sent_ids)
    # received counts each committed request once: all acknowledged ones, plus
    # at most those whose answer was lost (committed, then the server died).
    # The retrying client may land a request more than once in that way.
    unanswered_events = sum(len(event_ids(body)) for p in once for body in p.unanswered)
    maybe_landed = sum(p.maybe_landed_events for p in retrying)
    most = report.acknowledged_events + unanswered_events + maybe_landed
    assert report.acknowledged_events <= stats["received"] <= most
    return report
