"""The `tail` workload: how fast stored events reach live streams, and what open streams cost.

On one server as production runs it (fresh database): by default with a
stream process of its own serving the streams, as Docker Compose runs them
(--streams-on workers: on the gunicorn workers that take the publishes). In
this order:

1. Latency. Two streams follow probe topics while a batch publisher (batches
   of 500 every 0.1 s, one probe event in each) and a single-event publisher
   (one probe event per request, every 20 ms) run. Each probe's latency runs
   from its publish's 202 to its arrival on the stream: p50 and p99 for each.
2. Capacity. The batch5000 load, played by the load driver exactly as that
   workload does, alternately with no stream open and with 200 streams open
   (20 on the load's own topics, 180 on topics that get nothing), three runs
   with streams each between two without, after one play that is not
   counted. Each run with streams is compared with the mean of the runs on
   either side of it, and the figure is the mean of those ratios (the same
   for the server's CPU time per stored event in each run, which this
   shared machine's noise moves less than the rates). The store
   slows as it grows (each run adds its events) and the first play after a
   pause often runs fast, by more than the streams' effect: a single run
   with streams against one before and one after measured mostly that. Each
   matching stream must receive exactly its topic's new events.
3. Database cost. Queries per second with those 200 streams open and idle,
   and with none: PostgreSQL counts them (pg_stat_database's transactions);
   on SQLite the figure is the watcher's poll, one MAX() per process per
   LOGGREGATOR_STREAM_POLL_INTERVAL whatever the number of streams.

The 200 streams live in a process of their own (aiohttp, one event loop), so
reading them costs the load driver nothing.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from benchmark.load import DriverSpec, Phases, run_in_process
from benchmark.runner import fresh_database, percentile, summarise
from benchmark.server import BenchmarkServer, ServerConfig
from benchmark.stream_holder import StreamHolder
from benchmark.workloads import FULL, build_plan
from publisher.client import AggregatorClient
from publisher.stream_reader import EventStreamReader, Message

STREAMS = 200
MATCHING_STREAMS = 20
PROBE_BATCH_SIZE = 500
PROBE_BATCH_EVERY = 0.1
PROBE_SINGLE_EVERY = 0.02
TARGET_P99_MS = 1000.0
TARGET_PERCENT_WITH_STREAMS = 90.0
DEADLINE = 600.0  # a stuck stream fails the run; it measures nothing
STATS_DELAY = 11.0  # seconds; see _queries_per_second
CAPACITY_ROUNDS = 3  # runs with streams, each between two without


def run_tail(
    config: ServerConfig, *, quick: bool, seed: int, events: int | None = None, matching: int = MATCHING_STREAMS
) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="loggregator-bench-tail-"))
    load = replace(FULL["batch5000"], events=events or (20_000 if quick else 100_000))
    try:
        with fresh_database(config) as config, BenchmarkServer(directory, config) as server:
            latency = _latency(server, seconds=5.0 if quick else 20.0)
            capacity = _capacity(server, config, load, directory, seed, matching)
            return {
                "workload": "tail",
                "server": config.mode,
                "database": "postgresql" if config.postgres_url else "sqlite",
                "latency": latency,
                **capacity,
            }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- 1. latency ------------------------------------------------------------------


def _latency(server: BenchmarkServer, *, seconds: float) -> dict[str, Any]:
    arrived: dict[str, float] = {}
    readers = {
        kind: EventStreamReader(server.stream_url, {"topic": f"tail.probe.{kind}"}) for kind in ("single", "batch")
    }
    for reader in readers.values():
        threading.Thread(target=_record_arrivals, args=(reader, arrived), daemon=True).start()
    _wait(lambda: all(reader.last_id for reader in readers.values()), "the probe streams to open")
    accepted: dict[str, dict[str, float]] = {"single": {}, "batch": {}}
    stop = threading.Event()
    publishers = [
        threading.Thread(target=_publish_probes, args=(server.url, kind, accepted[kind], stop)) for kind in accepted
    ]
    for publisher in publishers:
        publisher.start()
    stop.wait(seconds)
    stop.set()
    for publisher in publishers:
        publisher.join()
    expected = {event_id for probes in accepted.values() for event_id in probes}
    _wait(lambda: expected <= arrived.keys(), "every probe to arrive")
    for reader in readers.values():
        reader.close()
    result = {}
    for kind, probes in accepted.items():
        latencies = sorted((arrived[event_id] - at) * 1000 for event_id, at in probes.items())
        result[kind] = {
            "probes": len(latencies),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
        }
    return result


def _record_arrivals(reader: EventStreamReader, arrived: dict[str, float]) -> None:
    for item in reader.follow():
        if isinstance(item, Message) and item.event == "event":
            arrived[msgspec.json.decode(item.data)["event_id"]] = time.monotonic()


def _publish_probes(url: str, kind: str, accepted: dict[str, float], stop: threading.Event) -> None:
    """Single events (each a probe) or batches of 500 (one probe each), at a steady pace, until `stop`."""
    every = PROBE_SINGLE_EVERY if kind == "single" else PROBE_BATCH_EVERY
    with AggregatorClient(url, timeout=300, max_retries=5) as client:
        while not stop.is_set():
            started = time.monotonic()
            probe = _event(f"tail.probe.{kind}")
            body = probe if kind == "single" else [probe, *(_event("tail.load") for _ in range(PROBE_BATCH_SIZE - 1))]
            client.publish(msgspec.json.encode(body))
            accepted[probe["event_id"]] = time.monotonic()
            stop.wait(max(0.0, every - (time.monotonic() - started)))


def _event(topic: str) -> dict:
    return {
        "topic": topic,
        "event_id": str(uuid.uuid4()),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": "benchmark-tail",
        "payload": {"probe": True},
    }


# --- 2. capacity, 3. database cost ---------------------------------------------------


def _capacity(
    server: BenchmarkServer, config: ServerConfig, load, directory: Path, seed: int, matching_streams: int
) -> dict[str, Any]:
    runs, cpu, idle, clients_cpu, problems = {}, {}, {}, {}, []

    def play(label: str, run_seed: int):
        spec = DriverSpec(
            url=server.url,
            workload=load,
            seed=run_seed,
            event_table=server.event_table(),
            ceiling_database=str(directory / f"ceiling-{label.replace(' ', '-')}.sqlite3"),
        )
        cpu_before, machine = server.cpu_seconds(), _MachineTimes()
        result = summarise(load, config, run_in_process(spec, machine), [])
        cpu[label] = round((server.cpu_seconds() - cpu_before) * 1e6 / load.events, 1)
        idle[label] = machine.idle_percent()
        problems.extend(f"{label}: {problem}" for problem in result["problems"])
        runs[label] = result["end_to_end_events_per_second"]

    def play_with_streams(label: str, run_seed: int, *, measure_idle: bool) -> float | None:
        """play() with the streams open; and (if asked) the database's queries/s afterwards, streams still open."""
        plan = build_plan(load, seed=run_seed)
        unique_by_topic = _unique_by_topic(plan.bodies)
        matching = [plan.topics[n % len(plan.topics)] for n in range(matching_streams)]
        patterns = matching + [f"tail.idle.n{n}" for n in range(STREAMS - matching_streams)]
        expected = [unique_by_topic[topic] for topic in matching]
        with StreamHolder(server.stream_url, patterns) as holder:
            clients_before = holder.cpu_seconds()
            play(label, run_seed)
            clients_cpu[label] = round((holder.cpu_seconds() - clients_before) * 1e6 / load.events, 1)
            counts = _wait(lambda: (c := holder.counts())[:matching_streams] >= expected and c, "the streams")
            if counts[:matching_streams] != expected or any(counts[matching_streams:]):
                problems.append(f"{label}: the streams did not receive exactly their topics' events")
            return _queries_per_second(config) if measure_idle else None

    play("warm-up", seed)  # not counted
    without, with_streams = [], []
    for round_ in range(1, CAPACITY_ROUNDS + 1):
        without.append(f"without streams {round_}")
        play(without[-1], seed + 2 * round_ - 1)
        with_streams.append(f"with streams {round_}")
        idle_with = play_with_streams(with_streams[-1], seed + 2 * round_, measure_idle=round_ == CAPACITY_ROUNDS)
    idle_without = _queries_per_second(config)
    without.append(f"without streams {CAPACITY_ROUNDS + 1}")
    play(without[-1], seed + 2 * CAPACITY_ROUNDS + 1)
    ratios = against_neighbours([runs[label] for label in with_streams], [runs[label] for label in without])
    percent = statistics.mean(ratios) if None not in ratios else None
    cpu_ratios = against_neighbours([cpu[label] for label in with_streams], [cpu[label] for label in without])
    return {
        "streams": STREAMS,
        "matching_streams": matching_streams,
        "events_per_run": load.events,
        "end_to_end_events_per_second": runs,
        # Server CPU per stored event during each run: steadier than the rates on a shared machine.
        "server_cpu_us_per_event": cpu,
        "cpu_percent_each_round": [round(ratio, 1) if ratio else None for ratio in cpu_ratios],
        # Where the limit is: the load shares this machine with the server.
        "stream_clients_cpu_us_per_event": clients_cpu,
        "machine_idle_percent": idle,
        "percent_each_round": [round(ratio, 1) if ratio else None for ratio in ratios],
        "percent_with_streams": round(percent, 1) if percent else None,
        "idle_queries_per_second": {"with_streams": idle_with, "without": idle_without},
        "ok": not problems,
        "problems": problems,
    }


def against_neighbours(with_streams: list[float | None], without: list[float | None]) -> list[float | None]:
    """Each run with streams as a percentage of the mean of the runs without on either side of it.

    `without` has one run more than `with_streams`: the runs alternate, starting and ending without.
    None where a run failed.
    """
    return [
        100 * value / statistics.mean(without[index : index + 2]) if value and all(without[index : index + 2]) else None
        for index, value in enumerate(with_streams)
    ]


class _MachineTimes(Phases):
    """How idle this machine's CPUs were during the load's timed phase (the driver's start-up excluded)."""

    _start = _end = None  # a driver that fails early never starts or ends its phase

    def started(self) -> None:
        self._start = _machine_ticks()

    def finished(self) -> None:
        self._end = _machine_ticks()

    def idle_percent(self) -> float | None:
        if self._start is None or self._end is None:
            return None
        busy, idle = (end - start for start, end in zip(self._start, self._end, strict=True))
        return round(100 * idle / (busy + idle), 1) if busy + idle else None


def _machine_ticks() -> tuple[int, int]:
    """(busy, idle) clock ticks of all this machine's CPUs so far; waiting for I/O counts as idle."""
    with open("/proc/stat") as stat:
        # guest and guest_nice, after these, are already counted in user and nice.
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal, idle + iowait


def _unique_by_topic(bodies: list[bytes]) -> Counter[str]:
    seen: set[tuple[str, str]] = set()
    for body in bodies:
        decoded = msgspec.json.decode(body)
        for event in decoded if isinstance(decoded, list) else [decoded]:
            seen.add((event["topic"], event["event_id"]))
    return Counter(topic for topic, _ in seen)


def _queries_per_second(config: ServerConfig, seconds: float = 10.0) -> float | None:
    """Transactions per second on the server's database while nothing is published (PostgreSQL only)."""
    if not config.postgres_url:
        return None
    # A backend that goes idle reports its counts up to PGSTAT_IDLE_INTERVAL
    # (10 s) late: the run's own transactions would land in the window.
    time.sleep(STATS_DELAY)
    name = config.database_url.rsplit("/", 1)[1]

    def transactions() -> int:
        with psycopg.connect(config.postgres_url, autocommit=True) as connection:
            connection.execute("SELECT pg_stat_clear_snapshot()")
            row = connection.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", [name]
            ).fetchone()
            return row[0]

    before = transactions()
    time.sleep(seconds)  # measuring a rate over a fixed window
    return round((transactions() - before - 1) / seconds, 1)


def _wait(condition, what: str):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)  # poll interval
    raise RuntimeError(f"timed out waiting for {what}")


# --- the report ---------------------------------------------------------------------


def write_tail_report(result: dict[str, Any], write) -> None:
    write(f"tail: live streams on {result['server']}")
    for kind, figures in result["latency"].items():
        write(
            f"  publish 202 -> arrival on a stream, {kind} publishes: p50 {figures['p50_ms']} ms, "
            f"p99 {figures['p99_ms']} ms ({figures['probes']} probes)"
        )
    rates = ", ".join(f"{label} {rate:,} ev/s" for label, rate in result["end_to_end_events_per_second"].items())
    write(f"  batch5000 end to end ({result['events_per_run']:,} events each): {rates}")
    each = ", ".join(f"{percent}%" for percent in result["percent_each_round"])
    write(
        f"  with {result['streams']} streams open ({result['matching_streams']} matching): "
        f"{result['percent_with_streams']}% of the runs without on either side (each round: {each})"
    )
    cpu = result["server_cpu_us_per_event"]
    write(
        "  server CPU per stored event (us): "
        + ", ".join(f"{label} {value}" for label, value in cpu.items())
        + f"; with streams, {', '.join(f'{percent}%' for percent in result['cpu_percent_each_round'])}"
        " of the runs without on either side"
    )
    clients = ", ".join(f"{label} {value}" for label, value in result["stream_clients_cpu_us_per_event"].items())
    write(f"  the stream clients' CPU per stored event (us; the benchmark's, on the server's CPUs): {clients}")
    machine = ", ".join(
        f"{label} {'-' if percent is None else f'{percent}%'}"
        for label, percent in result["machine_idle_percent"].items()
    )
    write(f"  machine idle while each run's load played: {machine}")
    idle = result["idle_queries_per_second"]
    if idle["with_streams"] is not None:
        write(f"  database queries/s, idle: {idle['with_streams']} with the streams open, {idle['without']} without")
    else:
        write("  database queries/s, idle: SQLite: one MAX(position) per worker per stream poll interval (0.1 s)")
    exact = "yes" if result["ok"] else "NO: " + "; ".join(result["problems"])
    write(f"  streams received exactly their events: {exact}")
    worst = max(figures["p99_ms"] for figures in result["latency"].values())
    write(f"  [{'   met' if worst <= TARGET_P99_MS else 'MISSED'}] p99 arrival <= {TARGET_P99_MS:.0f} ms: {worst} ms")
    percent = result["percent_with_streams"] or 0
    mark = "   met" if percent >= TARGET_PERCENT_WITH_STREAMS else "MISSED"
    floor = f"{TARGET_PERCENT_WITH_STREAMS:.0f}%"
    write(f"  [{mark}] batched end to end with {result['streams']} streams >= {floor}: {percent}%")
