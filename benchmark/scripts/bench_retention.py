"""Retention under load: whether the database stops growing, and what pruning costs publishes.

    python benchmark/scripts/bench_retention.py [--minutes 10] [--retention 2m] [--prune-every 15]
        [--mode batch] [--chunk-events N] [--chunk-seconds S] [--database-url postgres://… [--vacuum]] [--port 18510]

Starts gunicorn (2 workers, in-process consumers) on a fresh database (a
temporary SQLite file, or a scratch database on the PostgreSQL server of
--database-url) with LOGGREGATOR_RETENTION=--retention, runs the demo
publisher at full speed (`publish_events --interval 0 0 --mode MODE`) and,
every --prune-every seconds, prunes (events.retention.prune(), what the
automatic pruner and `manage.py prune` run, called from here so its start and
end are known; with --vacuum, then VACUUMs, as autovacuum would). Every minute it prints
the database's size on disk with the counters. Meanwhile a probe publishes one
event every 50 ms and records each request's latency; at the end it prints the
probe's p50/p99 while a prune ran and while none did, and their ratio (the
same run, the same load).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from benchmark.postgres import scratch_database  # noqa: E402
from benchmark.server import BenchmarkServer, ServerConfig  # noqa: E402
from harness.processes import PROJECT_DIR  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--retention", default="2m")
    parser.add_argument("--prune-every", type=float, default=15.0)
    parser.add_argument("--sample-every", type=float, default=60.0)
    parser.add_argument("--database-url", help="A PostgreSQL server (a scratch database is made on it).")
    parser.add_argument("--chunk-events", help="LOGGREGATOR_PRUNE_CHUNK_EVENTS (default: the setting's default).")
    parser.add_argument("--chunk-seconds", help="LOGGREGATOR_PRUNE_CHUNK_SECONDS (default: the setting's default).")
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="PostgreSQL: VACUUM the tables after each prune, as autovacuum would (for servers where it is off).",
    )
    parser.add_argument("--port", type=int, default=18510)
    parser.add_argument("--mode", default="batch", help="The publisher's --mode (default: batch, its fastest).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loggregator-retention-") as directory:
        if args.database_url:
            with scratch_database(args.database_url) as url:
                run(args, Path(directory), url)
        else:
            run(args, Path(directory), None)


def run(args, directory: Path, postgres_url: str | None) -> None:
    server = BenchmarkServer(directory, ServerConfig(database_url=postgres_url))
    server.port, server.url = args.port, f"http://127.0.0.1:{args.port}"
    server.env.update({"LOGGREGATOR_RETENTION": args.retention, "LOGGREGATOR_PRUNE_INTERVAL": "0"})
    if args.chunk_events:
        server.env["LOGGREGATOR_PRUNE_CHUNK_EVENTS"] = args.chunk_events
    if args.chunk_seconds:
        server.env["LOGGREGATOR_PRUNE_CHUNK_SECONDS"] = args.chunk_seconds
    size = _postgres_size(postgres_url) if postgres_url else _sqlite_size(server.database)
    print(
        f"{'PostgreSQL' if postgres_url else 'SQLite'}, retention {args.retention}, prune every {args.prune_every:g} s"
    )
    with server:
        os.environ.update(server.env)  # this process prunes the server's database (see _prune)
        import django

        django.setup()
        full_speed = ["--url", server.url, "--interval", "0", "0", "--mode", args.mode]
        publisher = subprocess.Popen(
            [sys.executable, "manage.py", "publish_events", *full_speed],
            cwd=PROJECT_DIR, env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stop, pruning = threading.Event(), threading.Event()
        probe = Probe(server.url, pruning, stop)
        threads = [
            threading.Thread(target=probe.run),
            threading.Thread(target=_prune, args=(args, pruning, stop, postgres_url if args.vacuum else None)),
        ]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        print(f"{'minute':>6} {'size MiB':>9} {'stored':>9} {'pruned':>10} {'received':>10}")
        try:
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                stop.wait(min(args.sample_every, args.minutes * 60 - elapsed))
                stats = requests.get(f"{server.url}/stats", timeout=60).json()
                minute = (time.monotonic() - started) / 60
                print(
                    f"{minute:6.1f} {size() / 2**20:9.1f} {stats['stored']:9d} {stats['pruned']:10d}"
                    f" {stats['received']:10d}",
                    flush=True,
                )
        finally:
            stop.set()
            publisher.terminate()
            publisher.wait()
            for thread in threads:
                thread.join()
        if postgres_url:
            _print_vacuum_state(postgres_url)
    probe.report()


class Probe:
    """One single-event publish every 50 ms; latencies split by whether a prune was running."""

    def __init__(self, url: str, pruning: threading.Event, stop: threading.Event):
        self.url, self.pruning, self.stop = url, pruning, stop
        self.latencies = {True: [], False: []}

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.wait(0.05):
            during = self.pruning.is_set()
            event = {
                "topic": "probe.latency",
                "event_id": str(uuid.uuid4()),
                "timestamp": datetime.now(UTC).isoformat(),
                "source": "bench_retention",
                "payload": {},
            }
            began = time.perf_counter()
            response = session.post(f"{self.url}/publish", json=event, timeout=60)
            elapsed = time.perf_counter() - began
            if response.status_code == 202:
                # While pruning: a prune ran at some moment of the request.
                self.latencies[during or self.pruning.is_set()].append(elapsed)

    def report(self) -> None:
        p99 = {}
        for during, label in ((True, "while pruning"), (False, "otherwise")):
            cuts = statistics.quantiles(self.latencies[during], n=100)
            p99[during] = cuts[98] * 1000
            count = len(self.latencies[during])
            print(f"probe publishes {label}: {count}, p50 {cuts[49] * 1000:.1f} ms, p99 {p99[during]:.1f} ms")
        print(f"p99 while pruning / p99 otherwise: {p99[True] / p99[False]:.2f}")


def _prune(args, pruning: threading.Event, stop: threading.Event, vacuum_url: str | None) -> None:
    """What `manage.py prune` and the automatic pruner run, here so that `pruning` brackets it exactly."""
    from events import retention

    started = time.monotonic()
    while not stop.wait(max(0.0, started + args.prune_every - time.monotonic())):
        started = time.monotonic()
        pruning.set()
        try:
            retention.prune(within=args.prune_every / 2, stop=stop)
        finally:
            pruning.clear()
        if vacuum_url:
            with psycopg.connect(vacuum_url, autocommit=True) as connection:
                connection.execute("VACUUM events_event, events_prunedevent, events_intakebatch")


def _sqlite_size(database: Path):
    def size() -> int:
        return sum(path.stat().st_size for path in database.parent.glob(f"{database.name}*") if path.is_file())

    return size


def _postgres_size(url: str):
    def size() -> int:
        with psycopg.connect(url) as connection:
            return connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    return size


def _print_vacuum_state(url: str) -> None:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, last_autovacuum FROM pg_stat_user_tables"
            " WHERE relname IN ('events_event', 'events_prunedevent', 'events_intakebatch') ORDER BY relname"
        ).fetchall()
    for name, live, dead, count, last in rows:
        print(f"{name}: {live} live rows, {dead} dead, autovacuumed {count} times (last {last})")


if __name__ == "__main__":
    main()
