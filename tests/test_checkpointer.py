"""SQLite's WAL checkpoints run on a thread beside the consumer (events.checkpointer)."""

import threading

from django.db import DatabaseError

from events import checkpointer
from events.checkpointer import Checkpointer
from tests.polling import wait_for


def test_requests_are_served_on_a_thread_of_its_own_and_folded_while_one_runs(monkeypatch):
    running, release = threading.Event(), threading.Event()
    ran_on = []

    def slow_checkpoint():
        ran_on.append(threading.current_thread().name)
        running.set()
        release.wait(10)

    monkeypatch.setattr(checkpointer.db, "checkpoint", slow_checkpoint)
    worker = Checkpointer(name="test-checkpointer")
    worker.request()
    assert running.wait(10)
    worker.request()  # while one runs: the two become one more checkpoint
    worker.request()
    running.clear()
    release.set()
    assert running.wait(10)
    worker.stop()
    assert ran_on == ["test-checkpointer", "test-checkpointer"]


def test_a_failed_checkpoint_is_logged_and_the_thread_goes_on(monkeypatch, caplog):
    attempts = []
    second = threading.Event()

    def fails_once():
        attempts.append(threading.current_thread().name)
        if len(attempts) == 1:
            raise DatabaseError("disk I/O error")
        second.set()

    monkeypatch.setattr(checkpointer.db, "checkpoint", fails_once)
    worker = Checkpointer()
    worker.request()
    wait_for(lambda: attempts, message="the first checkpoint")
    worker.request()
    assert second.wait(10)
    assert worker.stop()  # the thread ended
    assert "WAL checkpoint failed" in caplog.text
