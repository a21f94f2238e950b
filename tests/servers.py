"""Real processes for end-to-end tests: gunicorn servers and run_consumer commands.

Each runs in its own process group so a test can SIGKILL a server together with
its workers, as a crash or an OOM kill would. The processes of one test share a
database of their own, on the suite's database engine (ServiceDatabase).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import psycopg
import pytest
import requests
from django.conf import settings

from tests.polling import wait_for

PROJECT_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManagedProcess:
    """A child process with its own log file, stopped or killed as a group."""

    def __init__(self, name: str, data_dir: Path, env: dict[str, str]):
        self.name = name
        self.data_dir = data_dir
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}-{self.starts}.log"

    def spawn(self, args: list[str]) -> None:
        self.starts += 1
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                args, cwd=PROJECT_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, *, deadline: float = 120.0) -> int | None:
        """Send `sig` and wait for the process to exit; returns its exit code."""
        if not self.running:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit after {signal.Signals(sig).name}:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL the whole process group: no handler, no cleanup, like a crash."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def service_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LOGGREGATOR_", "GUNICORN_"))}
    env.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "loggregator_site.settings"})
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=PROJECT_DIR, env=env, check=True)


def on_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def requires_postgresql():
    """Mark for tests of PostgreSQL-only behaviour (call it at collection, when settings are loaded)."""
    return pytest.mark.skipif(
        not on_postgresql(),
        reason="PostgreSQL only: runs when DATABASE_URL is postgres://... "
        "(scripts/test does that when LOGGREGATOR_TEST_POSTGRES_URL is set)",
    )


def postgresql_connection(database_url: str, **kwargs) -> psycopg.Connection:
    """A plain psycopg connection, for tests that look at or lock the database from outside."""
    config = dj_database_url.parse(database_url)
    params = {
        "dbname": config["NAME"],
        "user": config["USER"],
        "password": config["PASSWORD"],
        "host": config["HOST"],
        "port": config["PORT"],
    }
    return psycopg.connect(**{key: value for key, value in params.items() if value}, **kwargs)


class ServiceDatabase:
    """An empty database for the processes of one test.

    A SQLite file in the test's directory, or, when the suite runs on
    PostgreSQL, a new database on the same server (named for this run, so
    concurrent runs never meet), dropped by drop() or else by drop_all() at
    the end of the run.
    """

    _numbers = itertools.count(1)
    _undropped: list[ServiceDatabase] = []

    def __init__(self, data_dir: Path):
        self.name: str | None = None
        if not on_postgresql():
            self.url = f"sqlite:///{data_dir / 'loggregator.sqlite3'}"
            return
        suite_url = os.environ["DATABASE_URL"]
        self.name = f"loggregator_e2e_{os.getpid()}_{next(self._numbers)}"
        with postgresql_connection(suite_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = urlsplit(suite_url)._replace(path=f"/{self.name}").geturl()
        self._undropped.append(self)

    @classmethod
    def drop_all(cls) -> None:
        for database in list(cls._undropped):
            database.drop()

    def drop(self) -> None:
        if self not in self._undropped:
            return
        self._undropped.remove(self)
        with postgresql_connection(os.environ["DATABASE_URL"], autocommit=True) as admin:
            # FORCE: a killed process's session may not have ended yet.
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


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
        # Without a URL, an empty database of its own (ServiceDatabase).
        database_url = database_url or ServiceDatabase(data_dir).url
        super().__init__(name, data_dir, service_env(database_url, **settings))
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        migrate(self.env)

    def start(self) -> None:
        self.spawn(
            [
                sys.executable, "-m", "gunicorn", "loggregator_site.asgi",
                "-c", "loggregator_site/gunicorn.conf.py",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers),
            ]
        )  # fmt: skip
        try:
            wait_for(self._ready, message=f"{self.name} to answer on {self.url}")
        except BaseException:
            self.kill()  # a server that never answered must not outlive the test
            raise

    def _ready(self) -> bool:
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
        try:
            return self.session.get(f"{self.url}/stats", timeout=5).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False  # not listening yet, or the workers are still starting on a busy machine

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


class ConsumerProcess(ManagedProcess):
    """`manage.py run_consumer` against the same database as a server.

    Its `name` names its log file and, on PostgreSQL, its sessions
    (application_name in pg_stat_activity).
    """

    def __init__(self, server: AggregatorServer, *args: str, name: str = "run_consumer"):
        super().__init__(name, server.data_dir, {**server.env, "PGAPPNAME": name})
        self.args = list(args)

    def start(self) -> None:
        self.spawn([sys.executable, "manage.py", "run_consumer", *self.args])
