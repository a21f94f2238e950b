"""Starting and stopping the service's real processes: gunicorn and manage.py commands.

Each child runs in a session of its own, so a stop or a SIGKILL reaches its
whole process group (gunicorn's workers too), as a crash or an OOM kill would.
Its output goes to a log file, and its environment holds none of the caller's
own service settings, only those it is given.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Variables of the caller's shell that would change how a child behaves.
_SERVICE_SETTINGS = ("LOGGREGATOR_", "GUNICORN_", "DJANGO_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a child process: the caller's, without its service settings, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_SERVICE_SETTINGS)}
    env.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "loggregator_site.settings"})
    env.update(settings)
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def migrate(env: dict[str, str]) -> None:
    subprocess.run(manage("migrate", "--noinput", "-v0"), cwd=PROJECT_DIR, env=env, check=True)


def gunicorn(application: str, *, port: int, workers: int, threads: int | None = None) -> list[str]:
    """gunicorn as production runs it (loggregator_site/gunicorn.conf.py), on 127.0.0.1:`port`."""
    command = [
        sys.executable, "-m", "gunicorn", application,
        "-c", "loggregator_site/gunicorn.conf.py",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
    ]  # fmt: skip
    return command if threads is None else [*command, "--threads", str(threads)]


# The live streams' own server runs below the write path's CPU priority: its
# work can wait, the consumer's cannot (README, "A stream process").
STREAM_PROCESS_NICENESS = 10
# Its environment on top of the web server's: the consumers run elsewhere.
STREAM_PROCESS_SETTINGS = {"LOGGREGATOR_INPROCESS_CONSUMER": "false"}


def stream_server(*, port: int) -> list[str]:
    """The stream process as docker/entrypoint.sh runs it (with STREAM_PROCESS_SETTINGS): one worker, niced."""
    return ["nice", "-n", str(STREAM_PROCESS_NICENESS), *gunicorn("loggregator_site.asgi", port=port, workers=1)]


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start `args` in a session of its own, its output in `log_path`."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            args, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def answers(session: requests.Session, url: str) -> bool:
    """Whether the server at `url` answers GET /stats yet."""
    try:
        return session.get(f"{url}/stats", timeout=5).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker still booting
        return False


class ManagedProcess:
    """A child process with a log file per start, stopped or killed as a group."""

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
        self.process = spawn(args, self.env, self.log_path)

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
