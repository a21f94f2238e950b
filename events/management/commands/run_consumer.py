import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from events import consumer_process
from events.consumer import Consumer
from loggregator_site import startup_heap
from loggregator_site.shutdown import stop_on_signals


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
        parser.add_argument(
            "--controlled-by-stdin",
            action="store_true",
            help=(
                "Wake at each byte of standard input and stop after the batch in hand when it ends: "
                "how a web process runs its consumer (events.consumer_process)."
            ),
        )

    def handle(self, *args, once, batch_size, poll_interval, controlled_by_stdin, **options):
        consumer = Consumer.from_settings(batch_events=batch_size, poll_interval=poll_interval)
        if controlled_by_stdin:
            consumer_process.follow_parent(on_input=consumer.wakeup.set, on_end=consumer.stop)
        startup_heap.freeze()  # everything it keeps is loaded by now

        def announce(signum):
            self.stdout.write(f"{signal.Signals(signum).name}: stopping after the current batch")
            consumer.stop()  # an idle consumer need not wait out its poll

        # A second signal interrupts at once (the batch then rolls back, nothing is lost).
        with stop_on_signals(consumer.stop_requested, announce):
            consumer.run(until_drained=once)
        self.stdout.write(f"Stored {consumer.unique} unique events, dropped {consumer.duplicates} duplicates.")
