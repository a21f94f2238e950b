"""The load driver: a process of its own that plays one workload against a server.

It builds and serialises every request, measures the ceiling on the same
events and the load ceiling (the same requests sent to a server that does
nothing, when one is given), then starts the clock and sends the requests over N keep-alive
connections: with wrk (benchmark.wrk) when it is installed, else with one
publisher AggregatorClient per thread, taking the next request from a shared
counter (a millisecond of CPU per request: it limits single-event runs). A second thread polls /stats, so the run
knows when every event has been processed: that moment ends the end-to-end
time, the last 202 ends the accept time.

No Django here: run_in_process() starts this module in a fresh interpreter.
"""

from __future__ import annotations

import itertools
import multiprocessing
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import requests

from benchmark import ceiling, wrk
from benchmark.workloads import Plan, Workload, build_plan
from publisher.client import AggregatorClient, PublishError
from publisher.generator import EventGenerator

STATS_FIELDS = ("received", "unique_processed", "duplicate_dropped", "queued")
# How often /stats is polled while waiting for the end; the long run records
# the whole timeline, so it polls less often.
POLL_INTERVAL = 0.02
LONG_RUN_POLL_INTERVAL = 0.25
READ_SAMPLES = 21
# The ceiling is the median of this many runs (the long run's: one).
CEILING_RUNS = 3
WARMUP_TOPIC = "benchmark.warmup"
# Generous: a deadline turns a stuck server into a failure; it measures nothing.
DRAIN_DEADLINE = 1800.0


@dataclass
class DriverSpec:
    url: str
    workload: Workload
    seed: int
    event_table: ceiling.EventTable
    ceiling_database: str
    # The null server (benchmark.null_app) for the load ceiling; None: not measured.
    null_url: str | None = None
    # A bare Django view (benchmark.framework_app) for the framework ceiling; None: not measured.
    framework_url: str | None = None
    # "wrk" or "requests" (the publisher's client).
    sender: str = "wrk"


@dataclass
class ReadLatency:
    stored: int
    stats_ms: float
    events_ms: float
    events_page: int


@dataclass
class DriverResult:
    workload: str
    events: int
    requests: int
    connections: int
    body_bytes: int
    expected_unique: int
    expected_duplicates: int
    ceiling_events_per_second: float
    ceiling_seconds: float
    # Seconds to send every request to the null server: what the load driver
    # and gunicorn alone allow; 0 when not measured.
    load_ceiling_seconds: float = 0.0
    # The same for the bare Django view: what the framework alone allows; 0 when not measured.
    framework_ceiling_seconds: float = 0.0
    sender: str = "requests"
    started_at: float = 0.0  # time.monotonic() when the clock started (one clock for all processes)
    accept_seconds: float = 0.0
    end_to_end_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    # (p50, p99) when the sender reports percentiles rather than every latency (wrk).
    latency_percentiles_ms: tuple[float, float] | None = None
    retries: int = 0
    resent: int = 0
    error: str | None = None
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    # (seconds since the clock started, received, processed), long run only.
    timeline: list[tuple[float, int, int]] = field(default_factory=list)
    reads: list[ReadLatency] = field(default_factory=list)


class Phases:
    """What the parent does when the timed phase starts and ends (e.g. start and stop a profiler)."""

    def started(self) -> None:
        pass

    def finished(self) -> None:
        pass


def run_in_process(spec: DriverSpec, phases: Phases | None = None) -> DriverResult:
    """Play the workload from a separate interpreter and return what it measured.

    The driver says "ready" before it starts the clock and waits for "go", then
    says "finished" once every event is processed, before its last reads.
    """
    phases = phases or Phases()
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_child, args=(spec, child_end), name=f"benchmark-load-{spec.workload.name}")
    process.start()
    child_end.close()
    result = None
    try:
        while True:
            message = parent_end.recv()
            if message == "ready":
                phases.started()
                parent_end.send("go")
            elif message == "finished":
                phases.finished()
            else:
                result = message
                break
    except EOFError:
        pass
    process.join()
    if isinstance(result, BaseException):
        raise result
    if result is None:
        raise RuntimeError(f"the load driver exited with {process.exitcode} without a result")
    return result


def _child(spec: DriverSpec, connection) -> None:
    try:
        connection.send(drive(spec, connection))
    except BaseException as exc:  # handed to the parent, which raises it
        connection.send(RuntimeError(f"load driver failed: {type(exc).__name__}: {exc}"))
    finally:
        connection.close()


def drive(spec: DriverSpec, parent=None) -> DriverResult:
    workload = spec.workload
    plan = build_plan(workload, seed=spec.seed)
    measured = ceiling.measure_median(
        spec.event_table, plan.bodies, Path(spec.ceiling_database), times=1 if workload.long_run else CEILING_RUNS
    )
    result = DriverResult(
        workload=workload.name,
        events=plan.events,
        requests=len(plan.bodies),
        connections=workload.connections,
        body_bytes=plan.body_bytes,
        expected_unique=plan.unique,
        expected_duplicates=plan.duplicates,
        ceiling_events_per_second=measured.events_per_second,
        ceiling_seconds=measured.seconds,
        sender=spec.sender,
    )
    if spec.null_url:
        result.load_ceiling_seconds = _seconds_to_send(spec.null_url, plan, workload, spec.sender)
    if spec.framework_url:
        result.framework_ceiling_seconds = _seconds_to_send(spec.framework_url, plan, workload, spec.sender)
    session = requests.Session()
    _warm_up(spec.url, workload.connections, session)
    if plan.preload_bodies:
        _preload(spec.url, plan, session)
        result.reads.append(_read_latency(spec.url, plan, session))
    result.before = _stats(session, spec.url)
    if parent is not None:
        parent.send("ready")
        parent.recv()
    _play(spec.url, plan, workload, result, spec.sender)
    if parent is not None:
        parent.send("finished")
    if workload.long_run and result.error is None:
        result.reads.append(_read_latency(spec.url, plan, session))
    return result


class _Senders:
    """One thread per connection, each with a publisher AggregatorClient.

    They send the plan's requests in order: the next one free goes to whichever is done.
    """

    def __init__(self, url: str, plan: Plan, connections: int):
        self.url = url
        self.plan = plan
        self.latencies_ms = [0.0] * len(plan.bodies)
        self.problems: list[str] = []
        self.retries = [0] * connections
        self.resent = [0] * connections
        self.failed = threading.Event()
        self.started_at = self.finished_at = 0.0
        self._next_request = itertools.count()
        self._threads = [threading.Thread(target=self._send, args=(n,), name=f"sender-{n}") for n in range(connections)]

    def start(self) -> None:
        self.started_at = time.monotonic()
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
        self.finished_at = time.monotonic()

    def _send(self, index: int) -> None:
        bodies = self.plan.bodies
        with AggregatorClient(self.url, timeout=300, max_retries=5) as client:
            while not self.failed.is_set() and (i := next(self._next_request)) < len(bodies):
                started = time.perf_counter()
                try:
                    outcome = client.publish(bodies[i])
                except PublishError as exc:
                    self.problems.append(f"request {i}: {exc}")
                    self.failed.set()
                    return
                self.latencies_ms[i] = (time.perf_counter() - started) * 1000
                self.retries[index] += outcome.attempts - 1
                self.resent[index] += outcome.maybe_landed * self.plan.sizes[i]


def _senders(url: str, plan: Plan, workload: Workload, sender: str) -> _Senders | wrk.WrkSenders:
    if sender == "wrk":
        return wrk.WrkSenders(url, plan.bodies, workload.connections)
    return _Senders(url, plan, workload.connections)


def _seconds_to_send(url: str, plan: Plan, workload: Workload, sender: str) -> float:
    """Seconds the load driver takes to send every request to a ceiling's server."""
    senders = _senders(url, plan, workload, sender)
    senders.start()
    senders.join()
    if senders.problems:
        raise RuntimeError(f"the ceiling's server at {url} failed: {'; '.join(senders.problems[:3])}")
    return senders.finished_at - senders.started_at


def _play(url: str, plan: Plan, workload: Workload, result: DriverResult, sender: str) -> None:
    total = plan.events
    target = {
        "received": result.before["received"] + total,
        "processed": _processed(result.before) + total,
    }
    senders = _senders(url, plan, workload, sender)

    poll_interval = LONG_RUN_POLL_INTERVAL if workload.long_run else POLL_INTERVAL
    watcher_session = requests.Session()
    senders.start()
    started = result.started_at = senders.started_at

    def accepted() -> None:
        senders.join()
        result.accept_seconds = senders.finished_at - started

    joiner = threading.Thread(target=accepted, name="accepted")
    joiner.start()
    deadline = started + DRAIN_DEADLINE
    while True:
        stats = _stats(watcher_session, url)
        now = time.monotonic()
        if workload.long_run:
            result.timeline.append((now - started, stats["received"], _processed(stats)))
        if stats["received"] >= target["received"] and _processed(stats) >= target["processed"]:
            result.end_to_end_seconds = now - started
            break
        if senders.failed.is_set() or now > deadline:
            break
        time.sleep(poll_interval)  # poll interval: the end is what /stats says
    joiner.join()
    problems = senders.problems
    if now > deadline and not result.end_to_end_seconds:
        problems.append(f"not processed within {DRAIN_DEADLINE:.0f} s")
    result.after = _stats(watcher_session, url)
    if isinstance(senders, _Senders):
        result.latencies_ms = senders.latencies_ms
        result.retries = sum(senders.retries)
        result.resent = sum(senders.resent)
    else:
        result.latency_percentiles_ms = senders.latency_ms
    result.error = "; ".join(problems[:3]) or None


def _preload(url: str, plan: Plan, session: requests.Session) -> None:
    """Store the first events of the measured topic, before the clock starts."""
    received = _stats(session, url)["received"]
    with AggregatorClient(url, timeout=300, max_retries=5) as client:
        for body in plan.preload_bodies:
            client.publish(body)
    _wait_until_idle(session, url, received=received + plan.preload_events)


def _warm_up(url: str, connections: int, session: requests.Session) -> None:
    """One small publish per connection, so no worker pays its first-request costs on the clock.

    They go to a topic of their own; the run's counts are /stats deltas.
    """
    bodies = [
        msgspec.json.encode({**event, "topic": WARMUP_TOPIC})
        for event in EventGenerator(topics=1).next_round(connections, 0.0).events
    ]
    clients = [AggregatorClient(url, timeout=300, max_retries=5) for _ in bodies]
    threads = [threading.Thread(target=client.publish, args=(body,)) for client, body in zip(clients, bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    _wait_until_idle(session, url, received=len(bodies))


def _wait_until_idle(session: requests.Session, url: str, *, received: int) -> dict[str, int]:
    deadline = time.monotonic() + DRAIN_DEADLINE
    while time.monotonic() < deadline:
        stats = _stats(session, url)
        if stats["received"] >= received and stats["queued"] == 0:
            return stats
        time.sleep(POLL_INTERVAL)  # poll interval
    raise TimeoutError("the server did not process the preload")


def _read_latency(url: str, plan: Plan, session: requests.Session) -> ReadLatency:
    """Median latency of GET /stats and of the measured topic's first /events page (limit 1000)."""
    stats = _stats(session, url)
    events_url = f"{url}/events"
    params = {"topic": plan.measured_topic, "limit": "1000"}
    stats_ms, events_ms = [], []
    page = 0
    for _ in range(READ_SAMPLES):
        started = time.perf_counter()
        session.get(f"{url}/stats", timeout=60).raise_for_status()
        stats_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        response = session.get(events_url, params=params, timeout=60)
        response.raise_for_status()
        events_ms.append((time.perf_counter() - started) * 1000)
        page = len(response.json()["events"])
    return ReadLatency(
        stored=stats["unique_processed"],
        stats_ms=statistics.median(stats_ms),
        events_ms=statistics.median(events_ms),
        events_page=page,
    )


def _stats(session: requests.Session, url: str) -> dict[str, int]:
    response = session.get(f"{url}/stats", timeout=60)
    response.raise_for_status()
    body = response.json()
    return {name: int(body[name]) for name in STATS_FIELDS}


def _processed(stats: dict[str, int]) -> int:
    return stats["unique_processed"] + stats["duplicate_dropped"]
