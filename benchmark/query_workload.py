"""The `query` workload: GET /events at 10,000 and at 1,000,000 stored events, and what its indexes cost.

Reads: for each size, a fresh database is filled by direct bulk inserts (SQL,
not HTTP: a million events through /publish would take most of the run and
measure the write path, which the other workloads do), with ~50 topics of 1
to 5 segments, 30 days of timestamps up to now, a few sources, and their
Stats counters. Then gunicorn serves it as in production and each query's
first page (limit 100) is timed over HTTP: the median of REPEATS requests
after a warm-up. Figures are compared as ratios within the run: 1M/10k per
query, the 500th page against the first, and the scan cost of q= and
payload. per 100,000 events a topic holds.

Writes: batch5000 end to end, the same events, on the schema without the
query indexes, with each alone and with all of them, in the same run.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests

from benchmark.runner import fresh_database, run_workload
from benchmark.server import BenchmarkServer, ServerConfig
from benchmark.workloads import FULL, QUICK
from events.models import Event, Stats

QUERY = "query"
SIZES = (10_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
REPEATS = 15
LIMIT = 100
DEEP_PAGE = 500
DAYS = 30
SOURCES = ("api-1", "api-2", "worker-1", "worker-2")
STATUSES = ("ok",) * 8 + ("failed", "retry")
SERVICES = 8
# Six topics per service (1 to 5 segments), and two more: 50 topics.
TOPICS = [
    topic
    for service in range(SERVICES)
    for topic in (
        f"svc{service}.audit",
        f"svc{service}.orders.created",
        f"svc{service}.orders.failed",
        f"svc{service}.payments.eu.settled",
        f"svc{service}.payments.eu.settled.late",
        f"svc{service}.health",
    )
] + ["heartbeat", "billing.orders.invoiced"]
EXACT = "svc3.orders.failed"
# A word in a few events of EXACT, all within one day.
RARE_WORD = "zanzibar"
RARE_DAY = 10  # days before the load
RARE_EVENTS = 20
# The indexes the query side added, and what the write path pays for each.
QUERY_INDEXES = ("event_timeline", "event_source_timeline")


def queries(rare_day: tuple[str, str]) -> list[tuple[str, dict[str, str], bool]]:
    """(name, parameters, narrowed by topic pattern and/or time window: held to the 2x target)."""
    since, until = rare_day
    listed = []
    for pattern in (EXACT, "svc3.>", "*.orders.*", ">"):
        listed.append((f"topic={pattern}", {"topic": pattern}, True))
        listed.append((f"topic={pattern} since=1h", {"topic": pattern, "since": "1h"}, True))
    return listed + [
        (f"topic={EXACT} order=desc", {"topic": EXACT, "order": "desc"}, True),
        ("topic=> order=desc", {"topic": ">", "order": "desc"}, True),
        ("topic=> source=worker-2", {"topic": ">", "source": "worker-2"}, True),
        ("topic=svc3.> source=worker-2", {"topic": "svc3.>", "source": "worker-2"}, True),
        (f"topic={EXACT} payload.status=failed", {"topic": EXACT, "payload.status": "failed"}, True),
        ("topic=> payload.status=failed", {"topic": ">", "payload.status": "failed"}, True),
        (
            f"topic={EXACT} q={RARE_WORD} (one day)",
            {"topic": EXACT, "q": RARE_WORD, "since": since, "until": until},
            True,
        ),
    ]


# Filters that match nothing: their first page scans every event of the topic.
SCANS = {
    "q=": {"topic": EXACT, "q": "no-such-word"},
    "payload.status=": {"topic": EXACT, "payload.status": "no-such-status"},
}
# The same empty answer without the scan (an empty window): what HTTP and the query cost besides.
NO_SCAN = "empty window"


def run_query_workload(config: ServerConfig, *, quick: bool, events: int | None, seed: int, repeat: int) -> dict:
    small, large = QUICK_SIZES if quick else SIZES
    if events is not None:
        large = events
    return {
        "database": "postgresql" if config.postgres_url else "sqlite",
        "sizes": [small, large],
        "reads": _measure_reads(config, (small, large), seed),
        "index_costs": _measure_index_costs(config, quick=quick, seed=seed, repeat=repeat),
    }


# --- reads ------------------------------------------------------------------


def _measure_reads(config: ServerConfig, sizes: tuple[int, int], seed: int) -> dict[int, dict[str, Any]]:
    """Read the same queries from both sizes.

    Both sizes are served at once and every query is sent to each in turn, so that the machine's drift weighs on
    both alike.
    """
    now = datetime.now(UTC)
    rare_start = now - timedelta(days=RARE_DAY)
    rare_day = (rare_start.isoformat(), (rare_start + timedelta(days=1)).isoformat())
    with ExitStack() as stack, requests.Session() as session:
        loaded = {size: _serve_loaded(stack, config, size, now=now, seed=seed) for size in sizes}
        urls = {size: server.url for size, (server, _, _) in loaded.items()}

        def medians(params: dict[str, str]) -> dict[int, float]:
            return _medians_ms(session, {size: (url, params) for size, url in urls.items()})

        def page_events(params: dict[str, str]) -> dict[int, int]:
            return {
                size: len(_get(session, url, {**params, "limit": str(LIMIT)})["events"]) for size, url in urls.items()
            }

        first_pages = {
            name: (medians(params), narrowed, page_events(params)) for name, params, narrowed in queries(rare_day)
        }
        future = (now + timedelta(days=1)).isoformat()
        scans = {
            name: medians(params) for name, params in {**SCANS, NO_SCAN: {"topic": EXACT, "since": future}}.items()
        }
        deep = {size: _deep_page(session, url, {"topic": ">"}) for size, url in urls.items()}
        deep_ms = _medians_ms(session, {size: (urls[size], params) for size, (_, params) in deep.items()})

    def figures(size: int, per_topic: dict[str, int], load_seconds: float) -> dict[str, Any]:
        first = {
            name: {"ms": ms[size], "events": events[size], "narrowed": narrowed}
            for name, (ms, narrowed, events) in first_pages.items()
        }
        return {
            "stored": size,
            "load_seconds": load_seconds,
            "first_pages": first,
            "deep_page": {"page": deep[size][0], "ms": deep_ms[size], "first_page_ms": first["topic=>"]["ms"]},
            "scans": {
                "events_scanned": per_topic[EXACT],
                "ms": {name: ms[size] for name, ms in scans.items() if name != NO_SCAN},
                "no_scan_ms": scans[NO_SCAN][size],
            },
        }

    return {size: figures(size, per_topic, load_seconds) for size, (_, per_topic, load_seconds) in loaded.items()}


def _serve_loaded(stack: ExitStack, config: ServerConfig, size: int, *, now: datetime, seed: int):
    """A server on a fresh database holding `size` events: (server, events per topic, load seconds)."""
    directory = Path(tempfile.mkdtemp(prefix=f"loggregator-bench-query-{size}-"))
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    config = stack.enter_context(fresh_database(config))
    server = stack.enter_context(BenchmarkServer(directory, config))
    postgres = config.database_url is not None
    started = time.monotonic()
    with _connection(server) as connection:
        per_topic = load(connection, size, now=now, seed=seed, postgres=postgres)
        _analyze(connection, postgres=postgres)
    return server, per_topic, round(time.monotonic() - started, 1)


def _medians_ms(session: requests.Session, targets: dict[int, tuple[str, dict[str, str]]]) -> dict[int, float]:
    """Median latency of GET /events on each target (url, parameters), the targets taking turns."""
    timings: dict[int, list[float]] = {key: [] for key in targets}
    for round_number in range(2 + REPEATS):  # two warm-up rounds: connections, caches
        for key, (url, params) in targets.items():
            started = time.perf_counter()
            _get(session, url, {**params, "limit": str(LIMIT)})
            if round_number >= 2:
                timings[key].append((time.perf_counter() - started) * 1000)
    return {key: round(statistics.median(values), 2) for key, values in timings.items()}


def _get(session: requests.Session, url: str, params: dict[str, str]) -> dict:
    response = session.get(f"{url}/events", params=params, timeout=120)
    response.raise_for_status()
    return response.json()


def _deep_page(session: requests.Session, url: str, params: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Follow `next` to the DEEP_PAGE-th page (or the last one there is): its number and parameters."""
    page = _get(session, url, {**params, "limit": str(LIMIT)})
    number, parameters = 1, params
    while number < DEEP_PAGE and page["next"]:
        cursor = page["next"].split("cursor=")[-1]
        parameters = {**params, "cursor": cursor}
        page = _get(session, url, {**parameters, "limit": str(LIMIT)})
        number += 1
    return number, parameters


# --- loading ----------------------------------------------------------------


def load(connection, size: int, *, now: datetime, seed: int, postgres: bool) -> dict[str, int]:
    """Insert `size` events and their counters over a DB-API `connection` (psycopg or sqlite3); events per topic."""
    rng = random.Random(seed)
    per_topic = dict.fromkeys(TOPICS, 0)
    for chunk in _chunks(_rows(rng, size, now=now, postgres=postgres), 50_000):
        for row in chunk:
            per_topic[row[0]] += 1
        _insert_events(connection, chunk, postgres=postgres)
    stats = [(topic, 0, count, count, 0) for topic, count in per_topic.items()]
    _execute_many(
        connection,
        f"INSERT INTO {Stats._meta.db_table} (topic, shard, received, unique_processed, duplicate_dropped)"
        " VALUES (%s, %s, %s, %s, %s)",
        stats,
        postgres=postgres,
    )
    connection.commit()
    return per_topic


def _rows(rng: random.Random, size: int, *, now: datetime, postgres: bool) -> Iterator[tuple]:
    span = DAYS * 86_400
    rare_start = now - timedelta(days=RARE_DAY)
    for index in range(size):
        topic = rng.choice(TOPICS)
        moment = now - timedelta(seconds=rng.random() * span)
        message = "order handled"
        if index < RARE_EVENTS:  # spread over the table's ids; in one topic, within one day
            topic, moment = EXACT, rare_start + timedelta(seconds=rng.random() * 86_400)
            message = f"order handled by {RARE_WORD}"
        payload = (
            f'{{"status": "{rng.choice(STATUSES)}", "region": "{rng.choice(("eu", "us", "apac"))}", '
            f'"amount": {rng.randrange(1, 10_000)}, "message": "{message}"}}'
        )
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        yield (
            topic,
            str(event_id) if postgres else event_id.hex,
            moment.isoformat() if postgres else moment.replace(tzinfo=None).isoformat(" "),
            rng.choice(SOURCES),
            payload,
        )


def _chunks(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _connection:
    """A direct connection to the server's database (psycopg or sqlite3)."""

    def __init__(self, server: BenchmarkServer):
        self.server = server

    def __enter__(self):
        if self.server.config.database_url:
            self.connection = psycopg.connect(self.server.config.database_url)
        else:
            self.connection = sqlite3.connect(self.server.database, timeout=60)
            self.connection.execute("PRAGMA cache_size = -262144")  # 256 MiB: the load is random inserts
        return self.connection

    def __exit__(self, *exc_info):
        self.connection.close()


def _insert_events(connection, rows: list[tuple], *, postgres: bool) -> None:
    columns = "topic, event_id, timestamp, source, payload"
    if postgres:
        with connection.cursor() as cursor, cursor.copy(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        connection.executemany(f"INSERT INTO {Event._meta.db_table} ({columns}) VALUES (?, ?, ?, ?, ?)", rows)


def _execute_many(connection, sql: str, rows: list[tuple], *, postgres: bool) -> None:
    if postgres:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    else:
        connection.executemany(sql.replace("%s", "?"), rows)


def _analyze(connection, *, postgres: bool) -> None:
    """Planner statistics, as a database that has been running a while has them."""
    if postgres:
        connection.autocommit = True
        connection.execute(f"VACUUM ANALYZE {Event._meta.db_table}")
    else:
        connection.execute("ANALYZE")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# --- what the indexes cost on ingest -----------------------------------------


def _measure_index_costs(config: ServerConfig, *, quick: bool, seed: int, repeat: int) -> dict[str, Any]:
    """batch5000 end to end without the query indexes, with each alone and with all: events/s, medians."""
    workload = (QUICK if quick else FULL)["batch5000"]
    variants = {"without": QUERY_INDEXES, **{f"+{name}": _all_but(name) for name in QUERY_INDEXES}, "with all": ()}
    rates: dict[str, list[int]] = {name: [] for name in variants}
    for run in range(repeat):
        # Interleaved, so that drift on the machine spreads over every variant.
        for name, dropped in variants.items():
            result = run_workload(workload, config=config, seed=seed + run, prepare=_dropping(dropped))
            rates[name].append(result["end_to_end_events_per_second"] or 0)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians["without"]
    return {
        "workload": workload.name,
        "events": workload.events,
        "runs": repeat,
        "events_per_second": medians,
        "percent_of_without": {
            name: round(100 * rate / baseline, 1) if baseline else None for name, rate in medians.items()
        },
    }


def _all_but(kept: str) -> tuple[str, ...]:
    return tuple(name for name in QUERY_INDEXES if name != kept)


def _dropping(indexes: tuple[str, ...]) -> Callable[[BenchmarkServer], None]:
    def drop(server: BenchmarkServer) -> None:
        with _connection(server) as connection:
            for index in indexes:
                connection.execute(f"DROP INDEX {index}")
            connection.commit()

    return drop


# --- report -------------------------------------------------------------------


def write_report(result: dict, write: Callable[[str], None]) -> None:
    small, large = result["sizes"]
    reads = result["reads"]
    write(f"\nquery workload on {result['database']}: first page of {LIMIT}, median of {REPEATS} requests (ms)")
    write(
        f"(events loaded by direct SQL inserts: {small:,} in {reads[small]['load_seconds']} s, "
        f"{large:,} in {reads[large]['load_seconds']} s)"
    )
    rows = [["query", f"{small:,}", f"{large:,}", "ratio", "target <= 2x", "events on the page"]]
    for name, measured in reads[small]["first_pages"].items():
        at_large = reads[large]["first_pages"][name]
        ratio = at_large["ms"] / measured["ms"]
        target = ("met" if ratio <= 2 else "MISSED") if measured["narrowed"] else "-"
        page = f"{measured['events']} / {at_large['events']}"
        rows.append([name, f"{measured['ms']:.2f}", f"{at_large['ms']:.2f}", f"{ratio:.2f}", target, page])
    for line in _table(rows):
        write(line)
    write("\ndeep page (topic=>, by cursor) against the first page:")
    for size in (small, large):
        deep = reads[size]["deep_page"]
        write(
            f"  {size:,} stored: page {deep['page']} {deep['ms']:.2f} ms, page 1 {deep['first_page_ms']:.2f} ms, "
            f"ratio {deep['ms'] / deep['first_page_ms']:.2f}"
        )
    write(f"\nscans bounded by the topic: a filter that matches nothing in topic={EXACT} (all its events)")
    for size in (small, large):
        scans = reads[size]["scans"]
        scanned = scans["events_scanned"]
        for name, ms in scans["ms"].items():
            extra = ms - scans["no_scan_ms"]
            write(
                f"  {size:,} stored, {name:<16} {scanned:,} events scanned: {ms:.2f} ms, {extra:+.2f} over "
                f"the same empty answer without a scan: {max(extra, 0) / scanned * 100_000:.0f} ms per 100k"
            )
    costs = result["index_costs"]
    write(
        f"\nwrite path: {costs['workload']} ({costs['events']:,} events) end to end, median of {costs['runs']} "
        "run(s) per variant"
    )
    rows = [["schema", "e2e ev/s", "% of without"]]
    for name, rate in costs["events_per_second"].items():
        rows.append([name, f"{rate:,.0f}", f"{costs['percent_of_without'][name]}"])
    for line in _table(rows):
        write(line)
    with_all = costs["percent_of_without"]["with all"]
    write(f"target: with all query indexes >= 90% of without: {'met' if with_all and with_all >= 90 else 'MISSED'}")


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
