"""The load driver's sender: wrk, so the load is not what limits the run.

A `requests` client costs about a millisecond of CPU per request, more than a
single-event publish costs the server. wrk (C, epoll) sends the same
pre-built bodies for a few microseconds each: benchmark/publish.lua, one wrk
thread per connection, each with its share of the bodies in a file of its
own, written before the clock starts. wrk reports the median and 99th
percentile latency itself (it keeps a histogram, not every request).

No Django here: the load driver runs this in a process of its own.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("publish.lua")
# wrk needs a duration; the driver ends it (SIGINT) once every thread is done.
MAX_SECONDS = 1800
REQUEST_TIMEOUT_SECONDS = 300
INTERRUPT_EVERY_SECONDS = 0.5


def available() -> bool:
    return shutil.which("wrk") is not None


class WrkSenders:
    """Sends every body once over `connections` keep-alive connections; start(), then join().

    The same surface as the load driver's own senders: `problems`, `failed`,
    `started_at` and, after join(), `finished_at` (the last answer) and
    `latency_ms` (p50, p99).
    """

    def __init__(self, url: str, bodies: list[bytes], connections: int):
        self.url = url
        self.connections = max(1, min(connections, len(bodies)))
        self.problems: list[str] = []
        self.failed = threading.Event()
        self.started_at = self.finished_at = 0.0
        self.latency_ms: tuple[float, float] | None = None
        self._directory = tempfile.TemporaryDirectory(prefix="loggregator-wrk-")
        self._prefix = Path(self._directory.name) / "bodies"
        for thread in range(self.connections):
            # Round-robin: every connection gets the same mix; JSON bodies hold no raw newline.
            with open(f"{self._prefix}.{thread}", "wb") as file:
                file.write(b"\n".join(bodies[thread :: self.connections]) + b"\n")
        self._process: subprocess.Popen | None = None
        self._ready = threading.Event()
        self._stderr_reader: threading.Thread | None = None
        self._progress: list[str] = []

    def start(self) -> None:
        """Start wrk; returns once a connection has begun sending (that moment is `started_at`)."""
        self._process = subprocess.Popen(
            [
                "wrk", "--threads", str(self.connections), "--connections", str(self.connections),
                "--duration", f"{MAX_SECONDS}s", "--timeout", f"{REQUEST_TIMEOUT_SECONDS}s",
                "--script", str(SCRIPT), self.url, "--", str(self._prefix),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self._stderr_reader = threading.Thread(target=self._follow, name="wrk-progress", daemon=True)
        self._stderr_reader.start()
        self._ready.wait()

    def _follow(self) -> None:
        """Read wrk's progress lines: the first "ready" starts the clock, the last "done" ends wrk."""
        assert self._process is not None
        done = 0
        for raw in self._process.stderr:
            line = raw.decode(errors="replace").strip()
            if line.startswith("ready") and not self._ready.is_set():
                self.started_at = _moment(line)
                self._ready.set()
            elif line.startswith("done"):
                done += 1
                self.finished_at = max(self.finished_at, _moment(line))
                if done == self.connections:
                    threading.Thread(target=self._interrupt, name="wrk-interrupt", daemon=True).start()
            elif line:
                self._progress.append(line)
        self._ready.set()  # wrk exited without starting: join() reports why

    def _interrupt(self) -> None:
        """SIGINT until wrk exits: it then prints its summary.

        wrk's main thread sets its SIGINT handler, then sleeps for --duration: a
        signal that lands between the two only sets the flag the sleep does not
        check, and wrk would sleep the whole duration. Another one ends the sleep.
        """
        assert self._process is not None
        while True:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(INTERRUPT_EVERY_SECONDS)
                return
            except subprocess.TimeoutExpired:
                continue

    def join(self) -> None:
        assert self._process is not None
        output = self._process.stdout.read()  # stderr is _follow()'s
        self._process.wait()
        assert self._stderr_reader is not None
        self._stderr_reader.join()
        self._process.stdout.close()
        self._process.stderr.close()
        self._directory.cleanup()
        summary = _summary(output)
        self.finished_at = self.finished_at or time.monotonic()
        if summary is None:
            self.problems.append(f"wrk exited with {self._process.returncode}: {' '.join(self._progress)[-500:]}")
        else:
            self.latency_ms = (summary["p50_us"] / 1000, summary["p99_us"] / 1000)
            self.problems.extend(summary["problems"])
            if summary["socket_errors"]:
                self.problems.append(f"{summary['socket_errors']} connection errors")
        if self.problems:
            self.failed.set()


def _moment(line: str) -> float:
    """The time.monotonic() at which the script wrote a "ready N T" or "done N T" line."""
    return float(line.split()[2])


def _summary(output: bytes) -> dict | None:
    """The JSON line publish.lua's done() prints after wrk's own text summary."""
    for line in reversed(output.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None
