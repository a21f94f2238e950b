"""The aggregator under test, run as production runs it, on a fresh database.

gunicorn with loggregator_site/gunicorn.conf.py (DEBUG off, a secret key,
ALLOWED_HOSTS=127.0.0.1), either with the in-process consumer thread of each
worker or with N dedicated `run_consumer` processes. Every process gets a
session of its own, so a stop reaches a whole process group and the memory
sampler can find gunicorn's workers by process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmark import ceiling
from harness.processes import (
    STREAM_PROCESS_NICENESS,
    STREAM_PROCESS_SETTINGS,
    answers,
    free_port,
    gunicorn,
    manage,
    migrate,
    service_env,
    spawn,
    stream_server,
)

READY_DEADLINE = 60.0
STOP_DEADLINE = 60.0
RSS_INTERVAL = 0.5
# Settled: over SETTLE_INTERVAL seconds all server processes together used at
# most SETTLE_MAX_TICKS clock ticks of CPU (1 tick = 10 ms on Linux).
SETTLE_INTERVAL = 0.5
SETTLE_MAX_TICKS = 5


@dataclass(frozen=True)
class ServerConfig:
    workers: int = 2
    threads: int = 8
    # 0: each gunicorn worker runs its consumer; N: N run_consumer processes.
    consumers: int = 0
    # The workers' consumers as threads in their interpreters rather than child
    # processes (LOGGREGATOR_CONSUMER_CHILD_PROCESS=false), to compare.
    consumer_threads: bool = False
    # None: a fresh SQLite file in the run's directory; else a fresh database
    # per workload on this PostgreSQL server (see benchmark.postgres).
    postgres_url: str | None = None
    # Set per workload: the database the server uses.
    database_url: str | None = None
    # "asgi": the production server (uvicorn workers, loggregator_site.asgi);
    # "wsgi": gunicorn's gthread worker on loggregator_site.wsgi, to compare.
    server: str = "asgi"
    # True: the live streams are served by a stream process of their own
    # (harness.processes.stream_server), as Docker Compose runs them.
    stream_process: bool = False

    @property
    def mode(self) -> str:
        processes = f"{self.workers} gunicorn {self.server} workers x {self.threads} threads"
        if self.consumers:
            processes = f"{processes}, {self.consumers} run_consumer process(es)"
        elif self.consumer_threads:
            processes = f"{processes}, in-process consumer threads"
        else:
            processes = f"{processes}, the workers' consumer processes"
        if self.stream_process:
            processes = f"{processes}, a stream process (1 worker, nice {STREAM_PROCESS_NICENESS})"
        return f"{processes}, on {'PostgreSQL' if self.postgres_url else 'SQLite'}"


@dataclass
class RssSample:
    at: float  # time.monotonic()
    kib: dict[str, int] = field(default_factory=dict)  # process label -> VmRSS


class BenchmarkServer:
    def __init__(self, directory: Path, config: ServerConfig):
        self.directory = directory
        self.config = config
        self.database = directory / "loggregator.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Where live streams open: the stream process, if there is one.
        self.stream_port = free_port() if config.stream_process else self.port
        self.stream_url = f"http://127.0.0.1:{self.stream_port}"
        self.env = self._env()
        self.processes: dict[str, subprocess.Popen] = {}

    def _env(self) -> dict[str, str]:
        return service_env(
            self.config.database_url or f"sqlite:///{self.database}",
            DEBUG="false",
            SECRET_KEY="loggregator-benchmark-not-secret",
            ALLOWED_HOSTS="127.0.0.1",
            LOG_LEVEL="WARNING",
            LOGGREGATOR_INPROCESS_CONSUMER="false" if self.config.consumers else "true",
            LOGGREGATOR_CONSUMER_CHILD_PROCESS="false" if self.config.consumer_threads else "true",
        )

    # --- lifecycle --------------------------------------------------------
    def start(self) -> None:
        migrate(self.env)
        self._spawn("gunicorn", self._gunicorn(f"loggregator_site.{self.config.server}"))
        if self.config.stream_process:
            self._spawn("streams", stream_server(port=self.stream_port), **STREAM_PROCESS_SETTINGS)
        for number in range(1, self.config.consumers + 1):
            self._spawn(f"run_consumer-{number}", manage("run_consumer"))
        self._wait_until_ready()
        self._wait_until_settled()

    def _gunicorn(self, application: str) -> list[str]:
        command = gunicorn(application, port=self.port, workers=self.config.workers, threads=self.config.threads)
        # --server wsgi: the WSGI applications under gunicorn's own threaded worker, to compare with the default.
        return [*command, "--worker-class", "gthread"] if self.config.server == "wsgi" else command

    def _spawn(self, name: str, args: list[str], **settings: str) -> None:
        self.processes[name] = spawn(args, {**self.env, **settings}, self.directory / f"{name}.log")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_DEADLINE
        urls = {self.url, self.stream_url}  # one, without a stream process
        with requests.Session() as session:
            while True:
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
                if all(answers(session, url) for url in urls):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer on {self.url}:\n{self.log('gunicorn')}")
                time.sleep(0.05)  # poll interval

    def _wait_until_settled(self) -> None:
        """Wait until every gunicorn worker is up and no process is still loading code.

        /stats answers as soon as one worker has loaded the application; a
        worker still importing would burn CPU on the clock. Booting processes
        are busy, so the server is settled once all workers exist and the whole
        group stays nearly idle for a moment.
        """
        deadline = time.monotonic() + READY_DEADLINE
        ticks = self._cpu_ticks()
        while time.monotonic() < deadline:
            time.sleep(SETTLE_INTERVAL)  # measuring idleness: nothing to poll
            now = self._cpu_ticks()
            busy = sum(now.values()) - sum(ticks.get(pid, 0) for pid in now)
            workers = len([pid for pid in now if pid not in self._leaders()])
            ticks = now
            if workers >= self.config.workers + self.config.stream_process and busy <= SETTLE_MAX_TICKS:
                return
        raise RuntimeError("the server never settled: a worker kept booting or busy")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's live processes have used so far."""
        return sum(self._cpu_ticks().values()) / os.sysconf("SC_CLK_TCK")

    def _leaders(self) -> set[int]:
        return {process.pid for process in self.processes.values()}

    def _cpu_ticks(self) -> dict[int, int]:
        """utime + stime (clock ticks) of every server process."""
        ticks = {}
        for pid, _name in self._members():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                ticks[pid] = int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
        return ticks

    def _members(self) -> list[tuple[int, str]]:
        """(pid, name of the process it belongs to) for every process in the server's groups."""
        groups = {process.pid: name for name, process in self.processes.items()}
        members = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    # The command name may hold spaces: fields start after its ")".
                    pgid = int(stat.read().rsplit(")", 1)[1].split()[2])
            except (OSError, IndexError, ValueError):
                continue  # the process exited meanwhile
            if pgid in groups:
                members.append((int(entry.name), groups[pgid]))
        return members

    def stop(self) -> None:
        """SIGTERM every process group; SIGKILL what has not exited by the deadline."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def __enter__(self) -> BenchmarkServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def event_table(self) -> ceiling.EventTable:
        """The events table's name and SQLite DDL, for the ceiling.

        Read from the server's own database; a server on another database
        gets it from a scratch SQLite file migrated for the purpose.
        """
        # Here, not at the top: scripts import this module before Django is set up
        # (bench_retention.py sets up Django with the server's own settings).
        from events.models import Event

        if self.config.database_url is None:
            return ceiling.event_table(self.database, Event._meta.db_table)
        scratch = self.directory / "ddl.sqlite3"
        migrate({**self.env, "DATABASE_URL": f"sqlite:///{scratch}"})
        return ceiling.event_table(scratch, Event._meta.db_table)

    # --- memory -----------------------------------------------------------
    def rss(self) -> dict[str, int]:
        """VmRSS in KiB of every server process: gunicorn's master and workers, consumers."""
        leaders = self._leaders()
        found: dict[str, int] = {}
        for pid, name in self._members():
            try:
                kib = _vm_rss(pid)
            except (OSError, ValueError):
                continue
            if pid in leaders:
                label = "gunicorn master" if name == "gunicorn" else name
            else:
                label = f"{name} worker {pid}"
            found[label] = kib
        return found


class NullServer(BenchmarkServer):
    """The same gunicorn serving benchmark.null_app: the load ceiling's server."""

    def start(self) -> None:
        self._spawn("null-gunicorn", self._gunicorn(f"benchmark.null_app:{self.config.server}_application"))
        self._wait_until_ready()
        self._wait_until_settled()


class FrameworkServer(BenchmarkServer):
    """The same gunicorn serving benchmark.framework_app: the framework ceiling's server."""

    def start(self) -> None:
        self.env["DJANGO_SETTINGS_MODULE"] = "benchmark.framework_app"
        self._spawn("framework-gunicorn", self._gunicorn(f"benchmark.framework_app:{self.config.server}_application"))
        self._wait_until_ready()
        self._wait_until_settled()


def _vm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples the server's resident memory every RSS_INTERVAL seconds in a thread."""

    def __init__(self, server: BenchmarkServer, interval: float = RSS_INTERVAL):
        self.server = server
        self.interval = interval
        self.samples: list[RssSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append(RssSample(at=time.monotonic(), kib=self.server.rss()))
            if self._stop.wait(self.interval):
                return
