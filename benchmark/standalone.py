"""Django for the standalone measuring scripts (benchmark/scripts/bench_*.py): one process, no server."""

from __future__ import annotations

import os
import tempfile


def setup_django(name: str, database_url: str | None, **env: str) -> tempfile.TemporaryDirectory:
    """Set Django up on `database_url`, or on a scratch SQLite database; returns the scratch directory.

    No in-process consumer: the scripts run the write path's steps themselves.
    `env` adds settings (DEBUG, SECRET_KEY, ...). Keep the directory until done.
    """
    scratch = tempfile.TemporaryDirectory(prefix=f"loggregator-{name}-")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{scratch.name}/db.sqlite3"
    os.environ["LOGGREGATOR_INPROCESS_CONSUMER"] = "false"
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loggregator_site.settings")
    import django

    django.setup()
    return scratch
