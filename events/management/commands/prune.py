import threading

from django.core.management.base import BaseCommand, CommandError

from events import retention
from loggregator_site.shutdown import stop_on_signals


class Command(BaseCommand):
    help = (
        "Delete events older than their retention (LOGGREGATOR_RETENTION) and tombstones past the dedup horizon, "
        "in small transactions. Web processes also do this every LOGGREGATOR_PRUNE_INTERVAL seconds."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what is due; delete nothing.")
        parser.add_argument("--chunk-events", type=int, default=None, help="Events deleted per transaction.")

    def handle(self, *args, dry_run, chunk_events, **options):
        policy = retention.RetentionPolicy.from_settings()
        if policy.keeps_everything:
            raise CommandError("LOGGREGATOR_RETENTION keeps every event: nothing to prune.")
        if chunk_events is not None and chunk_events < 1:
            raise CommandError("--chunk-events must be at least 1.")
        if dry_run:
            report = retention.due(policy)
            verb = "would delete"
        else:
            stop = threading.Event()
            # SIGTERM or Ctrl-C: finish the chunk in hand (it commits whole), then stop.
            with stop_on_signals(stop):
                report = retention.prune(policy, chunk_events=chunk_events, stop=stop)
            verb = "deleted"
        for topic in sorted(report.events.keys() | report.tombstones.keys()):
            if report.events[topic] or report.tombstones[topic]:
                self.stdout.write(
                    f"{topic}: {verb} {report.events[topic]} events, {report.tombstones[topic]} expired tombstones"
                )
        self.stdout.write(
            f"Total: {verb} {report.events.total()} events, {report.tombstones.total()} expired tombstones."
        )
