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

import asyncio.runners
import concurrent.futures.thread
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import django
import gunicorn.arbiter
import rest_framework
import uvicorn

from events import consumer, consumer_process, counters, intake, parsers, store, strict_json, validation, views

RATE = 200  # samples per second per thread
ATTACH_SECONDS = 1.0


def _mark(function: Callable) -> tuple[str, str]:
    """(name, file) of a function as py-spy prints its frames: `name (package/module.py:12)`.

    Built from the function itself, so renaming or moving it breaks the import
    here instead of silently emptying its stage.
    """
    return function.__name__, function.__module__.replace(".", "/") + ".py"


def _package(package: ModuleType) -> tuple[str, str]:
    """Any frame in `package`."""
    return "", f"{package.__name__}/"


# (stage, (function, file) pairs that mark it): the first stage with a
# matching frame anywhere in the stack wins, so inner steps come before the
# functions that call them.
STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("consumer: claim (read intake rows)", (_mark(intake.claim),)),
    ("consumer: decompress + decode", (_mark(intake.decode),)),
    ("consumer: counters", (_mark(counters.add_processed),)),
    ("consumer: insert events", (_mark(store.store_events),)),
    ("consumer: delete intake rows", (_mark(intake.delete),)),
    ("consumer: look for work", (_mark(intake.has_pending),)),
    ("consumer: BEGIN / COMMIT, lock waits", (_mark(store.process_next_batch),)),
    ("consumer: loop, idle waits", (_mark(consumer.Consumer.run),)),
    ("publish: read body", (_mark(parsers._read_at_most),)),
    ("publish: validate (strict JSON pass)", (_mark(strict_json.check),)),
    ("publish: parse + validate (msgspec)", (_mark(validation.parse_events),)),
    ("publish: encode + compress", (_mark(intake.encode),)),
    ("publish: counters", (_mark(counters.add_received),)),
    ("publish: intake INSERT, BEGIN / COMMIT, lock waits", (_mark(intake.enqueue),)),
    ("reads: /stats and /events", (_mark(views.EventListView.get), _mark(views.StatsView.get))),
    ("HTTP, Django and DRF", (_package(gunicorn), _package(uvicorn), _package(django), _package(rest_framework))),
)


# Innermost frames of a thread that is waiting, not working, though py-spy sampled it.
IDLE_LEAVES = (
    _mark(selectors.DefaultSelector.select),
    _mark(threading.Condition.wait),
    _mark(concurrent.futures.thread._worker),
    _mark(gunicorn.arbiter.Arbiter.wait_for_signals),
    _mark(consumer_process._read_parent_input),  # a consumer child's ear for its parent
)

# uvloop's event loop is C: py-spy finds it waiting for sockets (or reading and
# writing them) in the frame that started the loop. Not Django's time, and
# mostly waiting, but py-spy cannot tell which; summed apart.
LOOP_LEAVES = (_mark(asyncio.runners.Runner.run),)
LOOP_STAGE = "event loop: uvloop's C code (waiting for sockets, socket I/O)"


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
    if parsed and any(_matches(parsed[-1], mark) for mark in LOOP_LEAVES):
        return LOOP_STAGE
    for stage, marks in STAGES:
        if any(_matches(frame, mark) for mark in marks for frame in parsed):
            return stage
    return "other"


def _matches(frame: tuple[str, str], mark: tuple[str, str]) -> bool:
    (name, where), (function, path) = frame, mark
    return path in where and (not function or name == function or name.endswith(f".{function}"))
