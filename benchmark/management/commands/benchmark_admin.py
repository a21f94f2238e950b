from django.core.management.base import BaseCommand, CommandError

from benchmark import admin_pages

TARGET_RATIO = 2.0


def sizes(value: str) -> list[int]:
    numbers = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    if len(numbers) < 2 or min(numbers) < 1:
        raise ValueError(value)
    return numbers


class Command(BaseCommand):
    help = (
        "Measure every admin page a person can reach (event changelist unfiltered, filtered, searched, deep "
        "pages; an event; stats) at each size of the event store, on a fresh database filled directly, behind "
        f"gunicorn with DEBUG off; report each page's time and its ratio largest/smallest (target <= {TARGET_RATIO}x)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--sizes",
            type=sizes,
            default=[10_000, 1_000_000],
            help="Events stored, comma-separated (default: 10000,1000000).",
        )
        parser.add_argument("--repeat", type=int, default=7, help="Timed requests per page (default: 7; median).")
        parser.add_argument("--postgres", metavar="URL", default=None, help="Run on a scratch database of this server.")

    def handle(self, *args, sizes, repeat, postgres, **options):
        if repeat < 1:
            raise CommandError("--repeat must be at least 1.")
        engine = "PostgreSQL" if postgres else "SQLite"
        self.stderr.write(f"Filling {len(sizes)} {engine} databases:")
        results = admin_pages.measure(sizes, repeat=repeat, postgres_url=postgres, write=self.stderr.write)
        self.stdout.write(f"Admin pages on {engine}, median of {repeat} requests each:")
        admin_pages.write_report(sizes, results, self.stdout.write, target_ratio=TARGET_RATIO)
