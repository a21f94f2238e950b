"""A gunicorn worker's consumer runs as a child process: restarted when it dies, never outliving its worker."""

import os
import signal
from pathlib import Path

from tests.factories import events
from tests.polling import wait_for
from tests.traffic import assert_exact


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue  # exited meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":  # fields: state, ppid, ...
            children.append(int(stat.parent.name))
    return children


def _is_consumer(pid: int) -> bool:
    try:
        return b"run_consumer" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _consumers(server) -> list[int]:
    """The consumer processes under the server's workers."""
    return [child for worker in _children(server.process.pid) for child in _children(worker) if _is_consumer(child)]


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _one_consumer(server) -> int:
    wait_for(lambda: len(_consumers(server)) == 1, message="one consumer process")
    (pid,) = _consumers(server)
    return pid


def test_a_consumer_process_that_dies_is_started_again_and_stores_everything(processes):
    server = processes.server(workers=1)
    first = _one_consumer(server)
    os.kill(first, signal.SIGKILL)

    batch = events(300, topic="child.crash")
    assert server.publish(batch).status_code == 202
    assert server.publish(batch[:100]).status_code == 202
    assert_exact(server.wait_until_processed(), unique=300, duplicates=100)
    assert _one_consumer(server) != first
    assert f"Consumer process {first} exited with -9" in server.log()


def test_the_consumer_process_ends_with_its_worker(processes):
    server = processes.server(workers=1)
    consumer = _one_consumer(server)
    (worker,) = _children(server.process.pid)
    os.kill(worker, signal.SIGKILL)  # no cleanup in the worker: the child sees its input end

    wait_for(lambda: _gone(consumer), message="the orphaned consumer to exit")
    # gunicorn starts another worker, and that one its consumer.
    assert server.publish(events(50, topic="child.orphan")).status_code == 202
    assert_exact(server.wait_until_processed(), unique=50, duplicates=0)
    assert _one_consumer(server) != consumer


def test_sigterm_stops_the_consumer_process_after_its_work(processes):
    server = processes.server(workers=1)
    consumer = _one_consumer(server)
    assert server.publish(events(500, topic="child.stop")).status_code == 202
    assert server.stop() == 0
    assert _gone(consumer)
    assert f"Consumer process {consumer} stopped (exit code 0)" in server.log()
