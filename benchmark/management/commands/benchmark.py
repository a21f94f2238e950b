import json
import random
import signal
from dataclasses import replace
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmark import otlp_workload, query_workload, report, wrk
from benchmark.profile import available as profiler_available
from benchmark.query_workload import QUERY, run_query_workload
from benchmark.runner import run_workload
from benchmark.server import ServerConfig
from benchmark.tail_workload import MATCHING_STREAMS, STREAMS, run_tail, write_tail_report
from benchmark.workloads import FULL, NAMES, QUICK

# Run only when named: otlp (OTLP ingest against /publish, on servers of its own: benchmark.otlp_workload),
# query (reads at 10k and 1M stored events, and what the query indexes cost on ingest: benchmark.query_workload)
# and tail (live streams open during the load: benchmark.tail_workload).
TAIL = "tail"
CHOICES = (*NAMES, otlp_workload.NAME, QUERY, TAIL)


def workload_names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in CHOICES]
    if unknown or not names:
        raise ValueError(value)
    return names


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


class Command(BaseCommand):
    help = (
        "Measure Loggregator: start gunicorn (as production runs it) on a fresh temporary database for "
        "each workload, publish pre-serialised requests from a separate process, and report accept and "
        "end-to-end throughput, request latency, exact counts and the raw-SQLite ceiling."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--workloads",
            type=workload_names,
            default=list(NAMES),
            help=f"Comma-separated workloads to run, from {', '.join(CHOICES)} (default: all but otlp, query, tail).",
        )
        parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run of a minute or two.")
        parser.add_argument(
            "--events",
            type=int,
            default=None,
            help="Events per workload instead of its default (for the long run: events to store).",
        )
        parser.add_argument("--repeat", type=int, default=1, help="Run each workload this many times (default: 1).")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: 2).")
        parser.add_argument("--threads", type=int, default=8, help="Threads per gunicorn worker (default: 8).")
        parser.add_argument(
            "--consumers",
            type=int,
            default=0,
            help="0: each gunicorn worker's consumer (default); N: N run_consumer processes "
            "with LOGGREGATOR_INPROCESS_CONSUMER=false.",
        )
        parser.add_argument(
            "--consumer-threads",
            action="store_true",
            help="Each worker's consumer as a thread of the worker, not a child process "
            "(LOGGREGATOR_CONSUMER_CHILD_PROCESS=false), to compare.",
        )
        parser.add_argument(
            "--server",
            choices=("asgi", "wsgi"),
            default="asgi",
            help="asgi: the production worker, uvicorn on loggregator_site.asgi (default); wsgi: gunicorn's "
            "gthread worker on loggregator_site.wsgi, for comparison.",
        )
        parser.add_argument(
            "--tail-matching",
            type=int,
            default=MATCHING_STREAMS,
            help=f"tail: how many of its {STREAMS} streams follow the load's topics (default: {MATCHING_STREAMS}).",
        )
        parser.add_argument(
            "--streams-on",
            choices=("process", "workers"),
            default="process",
            help="tail: serve the live streams from a stream process of their own, at a lower CPU priority, "
            "as Docker Compose runs them (default); or from the gunicorn workers that take the publishes.",
        )
        parser.add_argument(
            "--postgres",
            metavar="URL",
            default=None,
            help="Run on PostgreSQL: a fresh database per workload on the server of URL "
            "(e.g. postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards.",
        )
        parser.add_argument("--seed", type=int, default=None, help="Seed for the generated events (default: random).")
        parser.add_argument("--json", action="store_true", help="Print the results as JSON instead of tables.")
        parser.add_argument(
            "--profile",
            type=Path,
            default=None,
            metavar="DIR",
            help="Record the server processes with py-spy during each timed phase; raw stacks go to DIR "
            "and the report sums them per stage of the write path.",
        )
        parser.add_argument(
            "--sender",
            choices=("wrk", "requests"),
            default="wrk" if wrk.available() else "requests",
            help="What sends the requests: wrk (default when installed) or the publisher's client, "
            "which costs about a millisecond of CPU per request (default: %(default)s).",
        )
        parser.add_argument(
            "--keep-dir", action="store_true", help="Keep each workload's temporary directory (database, logs)."
        )

    def handle(
        self,
        *args,
        workloads,
        quick,
        events,
        repeat,
        workers,
        threads,
        consumers,
        consumer_threads,
        server,
        tail_matching,
        streams_on,
        postgres,
        seed,
        keep_dir,
        profile,
        sender,
        **options,
    ):
        if repeat < 1 or workers < 1 or threads < 1 or consumers < 0:
            raise CommandError("--repeat, --workers and --threads must be at least 1, --consumers at least 0.")
        if not 0 <= tail_matching <= STREAMS:
            raise CommandError(f"--tail-matching must be from 0 to {STREAMS}.")
        if events is not None and events < 1:
            raise CommandError("--events must be at least 1.")
        if sender == "wrk" and not wrk.available():
            raise CommandError("--sender wrk needs wrk: apt-get install wrk")
        if profile is not None and not profiler_available():
            raise CommandError("--profile needs py-spy: pip install py-spy")
        config = ServerConfig(
            workers=workers,
            threads=threads,
            consumers=consumers,
            consumer_threads=consumer_threads,
            postgres_url=postgres,
            server=server,
        )
        catalogue = QUICK if quick else FULL
        seed = random.randrange(2**31) if seed is None else seed
        # SIGTERM unwinds like Ctrl-C, so the servers and temporary directories are cleaned up.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        results, tails = [], []
        for run in range(repeat):
            for name in (name for name in workloads if name != QUERY):
                # Each run of each workload gets events of its own.
                workload_seed = seed + run * len(CHOICES) + CHOICES.index(name)
                if name == otlp_workload.NAME:
                    records = events or (otlp_workload.QUICK_RECORDS if quick else otlp_workload.FULL_RECORDS)
                    results += otlp_workload.run(config, seed=workload_seed, records=records)
                    continue
                if name == TAIL:
                    tails.append(
                        run_tail(
                            replace(config, stream_process=streams_on == "process"),
                            quick=quick,
                            seed=workload_seed,
                            events=events,
                            matching=tail_matching,
                        )
                    )
                    continue
                workload = catalogue[name]
                if events is not None:
                    workload = workload.with_events(events)
                if not options["json"]:
                    self.stderr.write(
                        f"{name} (run {run + 1}/{repeat}): {workload.description}, {workload.events:,} events"
                    )
                results.append(
                    run_workload(
                        workload,
                        config=config,
                        seed=workload_seed,
                        keep_dir=keep_dir,
                        profile_dir=profile,
                        run_name=f"{name}-{run + 1}",
                        sender=sender,
                    )
                )
        queried = None
        if QUERY in workloads:
            queried = run_query_workload(config, quick=quick, events=events, seed=seed, repeat=repeat)
        if options["json"]:
            document = {"seed": seed, "server": config.mode, "results": results, "medians": report.medians(results)}
            extra = {key: value for key, value in ((QUERY, queried), (TAIL, tails)) if value}
            self.stdout.write(json.dumps({**document, **extra}, indent=2))
        else:
            if results:
                report.write_report(results, self.stdout.write)
            if queried:
                query_workload.write_report(queried, self.stdout.write)
            for tail in tails:
                write_tail_report(tail, self.stdout.write)
        failed = [result["workload"] for result in results + tails if not result["ok"]]
        if failed:
            raise CommandError(f"counts or requests failed in: {', '.join(failed)}")
