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


def test_the_consumer_checkpoints_after_the_budgeted_events_or_a_while(monkeypatch):
    worker = Checkpointer()
    requests = []

    def request():  # instead of the thread: take the events the checkpoint covers
        requests.append(worker._requested)
        worker._requested = 0

    monkeypatch.setattr(worker, "request", request)
    monkeypatch.setattr(checkpointer, "MAX_INTERVAL", 3600.0)
    worker.budget = 12_000
    worker.stored(4_000)
    worker.stored(4_000)
    assert requests == []  # another 4,000 would reach the budget, not pass it
    worker.stored(4_000)
    assert requests == [12_000]  # the checkpoint learns how many events it covers
    worker.budget = checkpointer.MIN_EVENTS
    worker.stored(checkpointer.MIN_EVENTS - 1)
    assert requests == [12_000]  # never before MIN_EVENTS, however large the commits
    worker.stored(1)
    assert requests == [12_000, checkpointer.MIN_EVENTS]
    worker.stored(100)
    monkeypatch.setattr(checkpointer, "MAX_INTERVAL", 0.0)
    worker.stored(1)
    assert requests == [12_000, checkpointer.MIN_EVENTS, 101]


def test_the_budget_keeps_the_log_near_its_target_whatever_a_stored_event_adds(monkeypatch):
    """Pages per event fall or rise with the store's size; the budget follows, within its bounds."""
    monkeypatch.setattr(checkpointer, "MAX_INTERVAL", 3600.0)
    logs = iter(
        [
            (700, 700),  # a fresh store: 0.14 pages per event
            (6_000, 3_000),  # a checkpoint that could not copy all (a reader held on)
            (7_000, 7_000),  # the log went on from 6,000: 1,000 new pages
            (80_000, 80_000),  # a big store: far more pages per event
        ]
    )
    monkeypatch.setattr(checkpointer.db, "checkpoint", lambda: next(logs))
    worker = Checkpointer()
    assert worker.budget == checkpointer.MIN_EVENTS
    expected = [
        checkpointer.TARGET_FRAMES * 5_000 // 700,
        checkpointer.TARGET_FRAMES * 35_714 // 6_000,
        checkpointer.MAX_EVENTS,  # 5,000 * 29,761 / 1,000 would be more
        checkpointer.MIN_EVENTS,
    ]
    for budget in expected:
        worker.stored(worker.budget)
        wait_for(lambda budget=budget: worker.budget == budget, message=f"a budget of {budget} events")
    worker.stop()
