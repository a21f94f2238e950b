import os
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from loggregator_site.shutdown import stop_on_signals
from publisher.client import AggregatorClient, GaveUp, Rejected
from publisher.generator import EventGenerator
from publisher.rounds import MODES, Publisher

DEFAULT_URL = "http://127.0.0.1:8000"
MAX_BATCH = 10_000  # the most events /publish accepts in one request


class Command(BaseCommand):
    help = (
        "Publish demo events to a Loggregator aggregator: rounds of --events events with "
        "--duplicate-ratio re-sends, as single events or batches, every --interval seconds, "
        "until --rounds are done or SIGTERM/Ctrl-C. With --verify, check after each round "
        "that the aggregator's /stats counted it exactly once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            default=os.environ.get("LOGGREGATOR_URL") or DEFAULT_URL,
            help=f"Aggregator base URL (default: $LOGGREGATOR_URL, else {DEFAULT_URL}).",
        )
        parser.add_argument(
            "--api-key",
            default=os.environ.get("LOGGREGATOR_API_KEY") or None,
            help="Sent as 'Authorization: Bearer KEY' (default: $LOGGREGATOR_API_KEY; no header when unset).",
        )
        parser.add_argument(
            "--events", type=int, default=5000, help="Events per round, duplicates included (default: 5000)."
        )
        parser.add_argument(
            "--duplicate-ratio",
            type=float,
            default=0.25,
            help="Share of each round's events that re-send an earlier event, >= 0 and < 1 (default: 0.25).",
        )
        parser.add_argument(
            "--interval",
            nargs=2,
            type=float,
            default=[15.0, 30.0],
            metavar=("MIN", "MAX"),
            help="Pause a random MIN..MAX seconds between rounds (default: 15 30).",
        )
        parser.add_argument("--rounds", type=int, default=0, help="Rounds to publish, 0 = until stopped (default: 0).")
        parser.add_argument("--topics", type=int, default=8, help="Distinct topics to publish to (default: 8).")
        parser.add_argument(
            "--max-batch",
            type=int,
            default=500,
            help=f"Largest batch in a batch round, 1..{MAX_BATCH} (default: 500).",
        )
        parser.add_argument(
            "--mode",
            choices=MODES,
            default="random",
            help="Send rounds as single events (one object per request), as batches, or pick "
            "one at random per round (default: random).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="Make rounds reproducible: same event ids, topics, modes and batches. Without "
            "it event ids are random per run.",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="After each round, poll /stats until the round is processed and check that "
            "unique_processed and duplicate_dropped grew by exactly what it sent. Assumes "
            "nobody else publishes to the aggregator meanwhile. A mismatch exits non-zero "
            "with --rounds.",
        )
        parser.add_argument(
            "--verify-timeout",
            type=float,
            default=120.0,
            help="Seconds --verify waits for /stats to settle (default: 120).",
        )
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="Seconds to wait for one HTTP response (default: 30)."
        )
        parser.add_argument(
            "--max-retries",
            type=int,
            default=None,
            help="Give up a request after this many retries and exit non-zero (default: retry "
            "until stopped, i.e. at least once).",
        )

    def handle(self, *args, **options):
        self._validate(options)
        stop = threading.Event()
        client = AggregatorClient(
            options["url"],
            api_key=options["api_key"],
            timeout=options["timeout"],
            max_retries=options["max_retries"],
            stop=stop,
        )
        publisher = Publisher(
            client,
            EventGenerator(topics=options["topics"], seed=options["seed"]),
            events=options["events"],
            duplicate_ratio=options["duplicate_ratio"],
            interval=tuple(options["interval"]),
            rounds=options["rounds"],
            max_batch=options["max_batch"],
            mode=options["mode"],
            verify=options["verify"],
            verify_timeout=options["verify_timeout"],
            seed=options["seed"],
            progress=self.stdout.isatty(),
            out=self.stdout.write,
            err=lambda message: self.stderr.write(self.style.ERROR(message)),
        )
        with client, stop_on_signals(stop, on_signal=self._announce_stop):
            try:
                result = publisher.run(stop)
            except Rejected as exc:
                raise CommandError(f"The aggregator rejected a request, not retried: {exc}") from exc
            except GaveUp as exc:
                raise CommandError(f"Could not deliver a request: {exc}") from exc
        if options["rounds"] and result.verify_failures:
            raise CommandError(f"--verify failed in {result.verify_failures} round(s)")

    def _announce_stop(self, signum):
        self.stderr.write(
            f"{signal.Signals(signum).name}: finishing the request in flight, then stopping "
            "(send it again to quit at once)"
        )

    def _validate(self, options):
        if not options["url"].startswith(("http://", "https://")):
            raise CommandError(f"--url must start with http:// or https://, got {options['url']!r}")
        if options["events"] < 1:
            raise CommandError("--events must be at least 1")
        if not 0 <= options["duplicate_ratio"] < 1:
            raise CommandError("--duplicate-ratio must be >= 0 and < 1")
        low, high = options["interval"]
        if not 0 <= low <= high:
            raise CommandError("--interval needs 0 <= MIN <= MAX")
        if options["rounds"] < 0:
            raise CommandError("--rounds must be 0 (forever) or more")
        if options["topics"] < 1:
            raise CommandError("--topics must be at least 1")
        if not 1 <= options["max_batch"] <= MAX_BATCH:
            raise CommandError(f"--max-batch must be between 1 and {MAX_BATCH}")
        if options["mode"] not in MODES:
            raise CommandError(f"--mode must be one of {', '.join(MODES)}")
        if options["verify_timeout"] <= 0 or options["timeout"] <= 0:
            raise CommandError("--timeout and --verify-timeout must be positive")
        if options["max_retries"] is not None and options["max_retries"] < 0:
            raise CommandError("--max-retries must not be negative")
