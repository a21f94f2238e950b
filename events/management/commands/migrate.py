"""`manage.py migrate` that migrates every database of the project unless told one (`--database`).

On a SQLite file the intake queue has a database of its own (events.routers);
one `migrate` per deploy keeps creating and updating all of them.
"""

from django.core.management.commands import migrate
from django.db import connections


class Command(migrate.Command):
    help = "Updates every database (or the one given with --database) to the current set of models and migrations."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=None)

    def get_check_kwargs(self, options):
        return {**super().get_check_kwargs(options), "databases": self._databases(options)}

    @staticmethod
    def _databases(options) -> list[str]:
        return list(connections) if options["database"] is None else [options["database"]]

    def handle(self, *args, **options):
        for database in self._databases(options):
            super().handle(*args, **{**options, "database": database})
