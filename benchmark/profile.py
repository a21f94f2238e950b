"""Where the server's time goes: py-spy on every server process, stacks sorted into stages.

`manage.py benchmark --profile DIR` records each workload's server processes
with `py-spy record --subprocesses --format raw` while the load runs, keeps
the raw stacks in DIR and sums them into the stages of the write path.
Waiting threads are sampled too (--idle), so a stage's figure is the time
threads spent in it, running or waiting: SQLite's sleeps while it waits for
the write lock count in the stage that asked for the lock. Threads with
nothing to do (a worker waiting on its queue or poller, an idle consumer)
are summed apart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 200  # samples per second per thread
ATTACH_SECONDS = 1.0

# (stage, (function, file) pairs that mark it): the first stage with a
# matching frame anywhere in the stack wins, so inner steps come before the
# functions that call them.
STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("consumer: claim (read intake rows)", (("claim", "events/intake.py"),)),
    ("consumer: decompress + decode", (("decode", "events/intake.py"),)),
    ("consumer: counters", (("add_processed", "events/counters.py"),)),
    ("consumer: insert events", (("store_events", "events/store.py"),)),
    ("consumer: delete intake rows", (("delete", "events/intake.py"),)),
    ("consumer: look for work", (("has_pending", "events/intake.py"),)),
    ("consumer: BEGIN / COMMIT, lock waits", (("process_next_batch", "events/store.py"),)),
    ("consumer: loop, idle waits", (("run", "events/consumer.py"),)),
    ("publish: read body", (("_read_at_most", "events/parsers.py"),)),
    ("publish: validate (python pass)", (("_check_and_normalise", "events/validation.py"),)),
    ("publish: parse + validate (msgspec)", (("parse_events", "events/validation.py"),)),
    ("publish: encode + compress", (("encode", "events/intake.py"),)),
    ("publish: counters", (("add_received", "events/counters.py"),)),
    ("publish: intake INSERT, BEGIN / COMMIT, lock waits", (("enqueue", "events/intake.py"),)),
    ("reads: /stats and /events", (("get", "events/views.py"),)),
    ("HTTP, Django and DRF", (("", "gunicorn/"), ("", "django/"), ("", "rest_framework/"))),
)


# Innermost frames of a thread that is waiting, not working, though py-spy sampled it.
# (function, file), as in STAGES.
IDLE_LEAVES = (
    ("select", "selectors.py"),
    ("wait", "threading.py"),
    ("_worker", "concurrent/futures/thread.py"),
    ("wait_for_signals", "gunicorn/arbiter.py"),
    ("sleep", "gunicorn/arbiter.py"),
)


def executable() -> str | None:
    """py-spy beside this interpreter (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def available() -> bool:
    return executable() is not None


class Recorder:
    """py-spy attached to some server processes (and their children) until stopped."""

    def __init__(self, directory: Path, name: str, pids: dict[str, int]):
        self.directory = directory
        self.name = name
        self.pids = pids
        self.processes: dict[str, subprocess.Popen] = {}

    def path(self, label: str) -> Path:
        return self.directory / f"{self.name}-{label}.txt"

    def __enter__(self) -> Recorder:
        self.directory.mkdir(parents=True, exist_ok=True)
        for label, pid in self.pids.items():
            self.processes[label] = subprocess.Popen(
                [
                    executable(), "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                    "--rate", str(RATE), "--idle", "--nonblocking", "--output", str(self.path(label)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(self.directory / f"{self.name}-{label}.py-spy.log", "wb"),
            )  # fmt: skip
        return self

    def __exit__(self, *exc_info: object) -> None:
        # py-spy writes its output when interrupted.
        for process in self.processes.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGINT)
        for process in self.processes.values():
            process.wait(60)

    def stages(self) -> dict[str, float]:
        """Seconds of sampled (running) time per stage, summed over every recorded thread."""
        counts: Counter[str] = Counter()
        for label in self.pids:
            path = self.path(label)
            if path.exists():
                counts.update(stage_counts(path.read_text(errors="replace")))
        return {stage: round(count / RATE, 3) for stage, count in counts.most_common()}


def stage_counts(raw: str) -> Counter[str]:
    """Samples per stage from py-spy's raw format: `frame;frame;... count` per line, outermost first."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[classify(stack.split(";"))] += int(count)
    return counts


def classify(frames: list[str]) -> str:
    """The stage of one stack; frames look like `Class.function (package/module.py:12)`."""
    parsed = [(name, where) for name, _, where in (frame.partition(" (") for frame in frames)]
    if parsed and any(_matches(parsed[-1], mark) for mark in IDLE_LEAVES):
        return "idle: threads with nothing to do"
    for stage, marks in STAGES:
        if any(_matches(frame, mark) for mark in marks for frame in parsed):
            return stage
    return "other"


def _matches(frame: tuple[str, str], mark: tuple[str, str]) -> bool:
    (name, where), (function, path) = frame, mark
    return path in where and (not function or name == function or name.endswith(f".{function}"))
