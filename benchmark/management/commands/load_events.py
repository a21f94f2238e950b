from django.core.management.base import BaseCommand, CommandError

from benchmark.stored_events import load_events


class Command(BaseCommand):
    help = (
        "Store N generated events directly in the configured database (no HTTP, no queue), with their "
        "counters: for measuring and trying reads at a million events. Adds to what is there."
    )

    def add_arguments(self, parser):
        parser.add_argument("events", type=int, help="How many events to store.")
        parser.add_argument("--topics", type=int, default=50, help="Over this many topics (default: 50).")
        parser.add_argument("--days", type=float, default=30, help="Timestamps over the last DAYS days (default: 30).")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the generated events (default: 0).")

    def handle(self, *args, events, topics, days, seed, **options):
        if events < 1 or topics < 1 or days <= 0:
            raise CommandError("events and --topics must be at least 1, --days above 0.")
        load_events(events, topics=topics, days=days, seed=seed)
        self.stdout.write(f"Stored {events:,} events over {topics} topics.")
