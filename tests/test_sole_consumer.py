"""On SQLite one in-process consumer runs at a time; another takes over when its process dies."""

import subprocess
import sys
import threading

from events.db import exclusive_turn
from tests.polling import wait_for

RETRY = 0.02


class CountingStop(threading.Event):
    """A stop event that counts how often a waiter waited on it: once per refused try."""

    def __init__(self):
        super().__init__()
        self.waits = 0

    def wait(self, timeout=None):
        self.waits += 1
        return super().wait(timeout)


class Contender:
    """A thread that waits for its turn on `path`, then holds it until released."""

    def __init__(self, path):
        self.path = str(path)
        self.stop = CountingStop()
        self.release = threading.Event()
        self.outcome = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        with exclusive_turn(self.path, self.stop, RETRY) as held:
            self.outcome = held
            if held:
                self.release.wait()

    def still_waiting(self) -> bool:
        """After several refused tries, it still has no turn."""
        wait_for(lambda: self.stop.waits >= 3, message="three tries at the lock")
        return self.outcome is None

    def finish(self):
        self.release.set()
        self.stop.set()
        self.thread.join()


def test_a_second_contender_waits_until_the_first_lets_go(tmp_path):
    lock = tmp_path / "db.sqlite3.consumer-lock"
    first = Contender(lock)
    wait_for(lambda: first.outcome is True, message="the first turn")
    second = Contender(lock)
    try:
        assert second.still_waiting()
        first.finish()
        wait_for(lambda: second.outcome is True, message="the second to take over")
    finally:
        first.finish()
        second.finish()


def test_a_waiting_contender_gives_up_when_stopped(tmp_path):
    lock = tmp_path / "lock"
    first = Contender(lock)
    wait_for(lambda: first.outcome is True, message="the first turn")
    second = Contender(lock)
    second.stop.set()
    second.thread.join()
    first.finish()
    assert second.outcome is False


def test_the_turn_passes_on_when_the_holding_process_is_killed(tmp_path):
    lock = tmp_path / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",  # holds the lock until killed
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    waiter = None
    try:
        assert holder.stdout.readline() == "held\n"
        waiter = Contender(lock)
        assert waiter.still_waiting()
        holder.kill()
        holder.wait()
        wait_for(lambda: waiter.outcome is True, message="the turn after the holder was killed")
    finally:
        holder.kill()
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
        if waiter:
            waiter.finish()
