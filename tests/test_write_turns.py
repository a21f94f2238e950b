"""On SQLite a writer that writes again at once (the pruner) first lets another connection commit."""

import sqlite3
import threading
import time

from events.db import wait_for_another_commit


def connect(path):
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = wal")
    return connection


def test_the_wait_ends_when_another_connection_commits(tmp_path):
    waiter, writer = connect(tmp_path / "db.sqlite3"), connect(tmp_path / "db.sqlite3")
    writer.execute("CREATE TABLE t (x)")
    stop, outcome = threading.Event(), []
    thread = threading.Thread(target=lambda: outcome.append(wait_for_another_commit(waiter.cursor(), stop, 600)))
    thread.start()
    deadline = time.monotonic() + 60
    while thread.is_alive() and time.monotonic() < deadline:
        writer.execute("INSERT INTO t VALUES (1)")  # again and again: the first may come before the wait begins
        thread.join(0.01)
    stop.set()  # ends a wait that missed every commit, so that the assertion reports it
    thread.join()
    assert outcome == [True]


def test_without_another_commit_it_waits_out_its_time(tmp_path):
    waiter = connect(tmp_path / "db.sqlite3")
    waiter.execute("CREATE TABLE t (x)")
    waiter.execute("INSERT INTO t VALUES (1)")  # its own commits do not end the wait
    assert wait_for_another_commit(waiter.cursor(), threading.Event(), longest=0.05) is False


def test_stop_ends_the_wait(tmp_path):
    stop = threading.Event()
    stop.set()
    assert wait_for_another_commit(connect(tmp_path / "db.sqlite3").cursor(), stop, longest=600) is False
