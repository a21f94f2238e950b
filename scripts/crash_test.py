"""The full crash test of issue #5, run by hand (CI runs a smaller one: tests/test_faults.py).

    python scripts/crash_test.py [--events 100000] [--kills 5] [--connections 6] [--scenario web consumer]

Publishes `--events` unique events plus 25% duplicates (batches of 50-400 and
single events) from several connections, half of which send each request once
and record the answer while the other half use the retrying publisher client.
Scenario "web" SIGKILLs gunicorn (with its in-process consumer) at random
moments and restarts it; scenario "consumer" runs a dedicated run_consumer and
SIGKILLs it mid-batch. Then it checks that every acknowledged event is stored
once, nothing is stored twice, and received, unique_processed,
duplicate_dropped and queued are exact. Exits 1 on any violation.
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from tests.servers import AggregatorServer, ServiceDatabase  # noqa: E402
from tests.traffic import run_crash_test  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="unique events (default: %(default)s)")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs per scenario (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=6, help="publishing connections (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", nargs="+", choices=["web", "consumer"], default=["web", "consumer"])
    args = parser.parse_args()
    # The client logs every retry; the report counts them.
    logging.getLogger("publisher.client").setLevel(logging.ERROR)

    failed = False
    for scenario in args.scenario:
        with tempfile.TemporaryDirectory(prefix=f"crash-{scenario}-") as data_dir:
            settings = {"LOGGREGATOR_INPROCESS_CONSUMER": "false"} if scenario == "consumer" else {}
            server = AggregatorServer(Path(data_dir), workers=args.workers, **settings)
            server.start()
            try:
                report = run_crash_test(
                    server,
                    scenario=scenario,
                    unique=args.events,
                    kills=args.kills,
                    connections=args.connections,
                    seed=args.seed,
                    log=lambda message: print(f"  {message}", flush=True),
                )
                print(f"PASS {report.summary()}", flush=True)
            except AssertionError as exc:
                failed = True
                print(f"FAIL {scenario}: {exc!r}", flush=True)
            finally:
                server.stop()
                ServiceDatabase.drop_all()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
