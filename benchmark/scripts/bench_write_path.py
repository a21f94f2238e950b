"""Time each stage of the write path for the benchmark's 5000-event batches, in one thread.

    python benchmark/scripts/bench_write_path.py [--batches N] [--database-url URL]

Publishes N batches of the `batch5000` workload (default 20) into a fresh,
migrated database (a temporary SQLite file unless --database-url says
otherwise; a PostgreSQL URL must name a database this may fill and empty) and
prints the median time of every stage per batch: the request's parse and
validation, the intake encode and write, and the consumer's claim and decode
(before its transaction), delete, insert, counters and commit. No HTTP and no
concurrency: the figures say what each stage costs, `manage.py benchmark
--profile` says where the time goes under load.
"""

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    from benchmark.standalone import setup_django

    scratch = setup_django("write-path", args.database_url)
    from django.conf import settings
    from django.core.management import call_command

    from benchmark.workloads import FULL, build_plan
    from events import counters, db, intake, store
    from events.validation import parse_events

    call_command("migrate", verbosity=0)
    plan = build_plan(FULL["batch5000"].with_events(5000 * args.batches), seed=7)
    timings = defaultdict(list)

    @contextmanager
    def timed(stage):
        started = time.perf_counter()
        yield
        timings[stage].append(time.perf_counter() - started)

    max_events = settings.LOGGREGATOR["MAX_BATCH_EVENTS"]
    for body in plan.bodies:
        with timed("publish: parse + validate"):
            events = parse_events(body, max_events=max_events)
        with timed("publish: encode + compress"):
            accepted = intake._Accepted(intake.encode(events), len(events), Counter(e.topic for e in events))
        with timed("publish: intake write + commit"):
            intake._write_accepted([accepted])
        # As events.store does it on SQLite: claim and decode before the write
        # lock; PostgreSQL claims inside the transaction, the same work.
        with timed("consumer: claim"):
            claimed = intake.claim(5000)
        with timed("consumer: decompress + decode"):
            rows = store.claimed_rows(claimed)
        with timed("consumer: whole transaction"), db.write_transaction():
            db.use_consumer_cache()
            with timed("consumer: delete intake row"):
                intake.delete([batch.id for batch in claimed])
            with timed("consumer: insert + counters"):
                store.store_events(rows)
        with timed("consumer: WAL checkpoint (its own thread, outside the lock)"):
            db.checkpoint()
    stored = counters.read_totals()
    print(
        f"{len(plan.bodies)} batches of 5000 ({plan.body_bytes / len(plan.bodies) / 1e6:.2f} MB each), "
        f"{stored.unique_processed:,} stored, {stored.duplicate_dropped:,} duplicates; medians per batch:"
    )
    for stage, seconds in timings.items():
        print(f"  {stage:<46} {statistics.median(seconds) * 1000:7.1f} ms")
    scratch.cleanup()


if __name__ == "__main__":
    main()
