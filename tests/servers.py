"""Real processes for end-to-end tests: gunicorn servers and run_consumer commands.

Each runs in its own process group so a test can SIGKILL a server together with
its workers, as a crash or an OOM kill would. The processes of one test share a
database of their own, on the suite's database engine (ServiceDatabase).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import tempfile
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import psycopg
import pytest
import requests
from django.conf import settings

from harness.processes import (
    PROJECT_DIR,
    STREAM_PROCESS_SETTINGS,
    ManagedProcess,
    answers,
    free_port,
    gunicorn,
    manage,
    migrate,
    service_env,
    stream_server,
)
from tests.polling import wait_for

__all__ = [
    "PROJECT_DIR",
    "AggregatorServer",
    "ConsumerProcess",
    "ManagedProcess",
    "Processes",
    "ServiceDatabase",
    "StreamProcess",
    "free_port",
    "service_env",
]

# Longer than any pause between a test's requests: a server closing an idle
# kept-alive connection just as a client reuses it for a POST loses that
# request ("Remote end closed connection"). The uvicorn workers close idle
# connections at once on a graceful stop, so this costs no wait.
TEST_KEEPALIVE = "30"


def on_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


POSTGRESQL_ONLY = (
    "PostgreSQL only: runs when DATABASE_URL is postgres://... "
    "(scripts/test does that when LOGGREGATOR_TEST_POSTGRES_URL is set)"
)


def requires_postgresql():
    """Mark for tests of PostgreSQL-only behaviour (call it at collection, when settings are loaded)."""
    return pytest.mark.skipif(not on_postgresql(), reason=POSTGRESQL_ONLY)


def postgresql_connection(database_url: str, **kwargs) -> psycopg.Connection:
    """A plain psycopg connection, for tests that look at or lock the database from outside."""
    return psycopg.connect(**postgresql_params(dj_database_url.parse(database_url)), **kwargs)


def postgresql_params(database: dict) -> dict:
    """psycopg's connection parameters from a Django DATABASES entry."""
    params = {
        "dbname": database["NAME"],
        "user": database["USER"],
        "password": database["PASSWORD"],
        "host": database["HOST"],
        "port": database["PORT"],
    }
    return {key: value for key, value in params.items() if value}


class ServiceDatabase:
    """A migrated database for the processes of one test.

    A SQLite file in the test's directory, or, when the suite runs on
    PostgreSQL, a new database on the same server (named for this run, so
    concurrent runs never meet), dropped by drop() or else by drop_all() at
    the end of the run. Each is a copy of one database migrated once per run
    (a file copy, or CREATE DATABASE ... TEMPLATE): a migrate per server
    would cost a second each.
    """

    _numbers = itertools.count(1)
    _undropped: list[ServiceDatabase] = []
    _sqlite_template: Path | None = None
    _postgresql_template: str | None = None

    def __init__(self, data_dir: Path):
        self.name: str | None = None
        if not on_postgresql():
            template = self._migrated_sqlite()
            for file in template.parent.glob("*.sqlite3"):  # the store's and the intake queue's (events.routers)
                shutil.copyfile(file, data_dir / file.name)
            self.url = f"sqlite:///{data_dir / template.name}"
            return
        template = self._migrated_postgresql()
        self.name = f"loggregator_e2e_{os.getpid()}_{next(self._numbers)}"
        with postgresql_connection(os.environ["DATABASE_URL"], autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template}"')
        self.url = _database_url(self.name)
        self._undropped.append(self)

    @classmethod
    def _migrated_sqlite(cls) -> Path:
        if cls._sqlite_template is None:
            path = Path(tempfile.mkdtemp(prefix="loggregator-template-")) / "loggregator.sqlite3"
            migrate(service_env(f"sqlite:///{path}"))
            # Out of WAL mode: every page in the one file, ready to copy. The
            # service turns WAL on again when it connects.
            for file in path.parent.glob("*.sqlite3"):
                with sqlite3.connect(file) as template:
                    template.execute("PRAGMA journal_mode=DELETE")
                template.close()
            cls._sqlite_template = path
        return cls._sqlite_template

    @classmethod
    def _migrated_postgresql(cls) -> str:
        if cls._postgresql_template is None:
            name = f"loggregator_e2e_{os.getpid()}_template"
            with postgresql_connection(os.environ["DATABASE_URL"], autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                admin.execute(f'CREATE DATABASE "{name}"')
            migrate(service_env(_database_url(name)))
            cls._postgresql_template = name
        return cls._postgresql_template

    @classmethod
    def drop_all(cls) -> None:
        for database in list(cls._undropped):
            database.drop()
        if cls._sqlite_template is not None:
            shutil.rmtree(cls._sqlite_template.parent, ignore_errors=True)
            cls._sqlite_template = None
        if cls._postgresql_template is not None:
            _drop_postgresql_database(cls._postgresql_template)
            cls._postgresql_template = None

    def drop(self) -> None:
        if self not in self._undropped:
            return
        self._undropped.remove(self)
        _drop_postgresql_database(self.name)


def _database_url(name: str) -> str:
    """The suite's PostgreSQL URL with another database name."""
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


def _drop_postgresql_database(name: str) -> None:
    with postgresql_connection(os.environ["DATABASE_URL"], autocommit=True) as admin:
        # FORCE: a killed process's session may not have ended yet.
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class AggregatorServer(ManagedProcess):
    """gunicorn serving Loggregator on a free port, by default with its in-process consumer."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        workers: int = 2,
        name: str = "gunicorn",
        **settings: str,
    ):
        # Without a URL, a migrated database of its own (ServiceDatabase).
        database_url = database_url or ServiceDatabase(data_dir).url
        super().__init__(name, data_dir, service_env(database_url, GUNICORN_KEEPALIVE=TEST_KEEPALIVE, **settings))
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()

    def command(self) -> list[str]:
        return gunicorn("loggregator_site.asgi", port=self.port, workers=self.workers)

    def start(self) -> None:
        self.spawn(self.command())
        try:
            wait_for(self._ready, message=f"{self.name} to answer on {self.url}")
        except BaseException:
            self.kill()  # no fixture teardown runs for a server that never started: don't leave it behind
            raise

    def _ready(self) -> bool:
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
        return answers(self.session, self.url)

    def stop(self, *args, **kwargs) -> int | None:
        # Our kept-alive connections closed first: a graceful stop waits for them.
        self.session.close()
        return super().stop(*args, **kwargs)

    def stats(self) -> dict:
        response = self.session.get(f"{self.url}/stats", timeout=30)
        response.raise_for_status()
        return response.json()

    def publish(self, body, **kwargs) -> requests.Response:
        return self.session.post(f"{self.url}/publish", json=body, timeout=60, **kwargs)

    def wait_until_processed(self, *, received: int | None = None) -> dict:
        """Poll /stats until nothing is queued (and `received` reached, if given)."""

        def processed():
            stats = self.stats()
            done = stats["queued"] == 0 and (received is None or stats["received"] >= received)
            return stats if done else None

        return wait_for(processed, message=f"{self.url} to process its queue")


class StreamProcess(AggregatorServer):
    """The stream process (harness.processes.stream_server) beside a server: its live streams, no consumer."""

    def __init__(self, data_dir: Path, *, database_url: str, **settings: str):
        super().__init__(
            data_dir, database_url=database_url, workers=1, name="streams", **STREAM_PROCESS_SETTINGS, **settings
        )

    def command(self) -> list[str]:
        return stream_server(port=self.port)


class ConsumerProcess(ManagedProcess):
    """`manage.py run_consumer` against the same database as a server.

    Its `name` names its log file and, on PostgreSQL, its sessions
    (application_name in pg_stat_activity).
    """

    def __init__(self, server: AggregatorServer, *args: str, name: str = "run_consumer"):
        super().__init__(name, server.data_dir, {**server.env, "PGAPPNAME": name})
        self.args = list(args)

    def start(self) -> None:
        self.spawn(manage("run_consumer", *self.args))


class Processes:
    """The real servers and consumers of one test, each stopped (consumers: killed) when the test ends.

    All share the test's database unless given another.
    """

    def __init__(self, data_dir: Path, database: ServiceDatabase):
        self.data_dir = data_dir
        self.database = database
        self._started: list[ManagedProcess] = []

    def server(self, *, start: bool = True, **options) -> AggregatorServer:
        """An AggregatorServer (same options), started unless start=False."""
        options.setdefault("database_url", self.database.url)
        server = AggregatorServer(self.data_dir, **options)
        self._started.append(server)
        if start:
            server.start()
        return server

    def consumer(self, server: AggregatorServer, *args: str, start: bool = False, **options) -> ConsumerProcess:
        """A ConsumerProcess on `server`'s database, started only if start=True."""
        consumer = ConsumerProcess(server, *args, **options)
        self._started.append(consumer)
        if start:
            consumer.start()
        return consumer

    def close(self) -> None:
        """Kill the consumers (nothing of theirs is checked any more), then stop the servers.

        Every one of them, even when stopping one fails.
        """
        with ExitStack() as stack:
            for process in self._started:
                if isinstance(process, AggregatorServer):
                    stack.callback(process.stop)
            for process in self._started:
                if not isinstance(process, AggregatorServer):
                    stack.callback(process.kill)  # these run first
