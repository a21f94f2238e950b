import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from events.consumer import Consumer


class Command(BaseCommand):
    help = (
        "Drain the intake queue: store each (topic, event_id) once and count duplicates. "
        "Runs until SIGTERM or Ctrl-C, finishing the batch in hand; any number may run at once."
    )

    def add_arguments(self, parser):
        config = settings.LOGGREGATOR
        parser.add_argument("--once", action="store_true", help="Drain the queue, then exit.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=config["CONSUMER_BATCH_EVENTS"],
            help="Most events stored per transaction (default: %(default)s).",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=config["CONSUMER_POLL_INTERVAL"],
            help="Seconds between looks at an empty queue (default: %(default)s).",
        )

    def handle(self, *args, once, batch_size, poll_interval, **options):
        consumer = Consumer(
            batch_events=batch_size, poll_interval=poll_interval, linger=settings.LOGGREGATOR["CONSUMER_LINGER"]
        )
        stop = threading.Event()

        def request_stop(signum, frame):
            self.stdout.write(f"{signal.Signals(signum).name}: stopping after the current batch")
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            consumer.run(stop, until_drained=once)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"Stored {consumer.unique} unique events, dropped {consumer.duplicates} duplicates.")
