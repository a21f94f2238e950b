"""Group commit: concurrent publishers share transactions, and each returns only after its own commit."""

import asyncio
import threading

import pytest

from events.group_commit import AsyncGroupCommit, GroupCommit
from tests import event_loops
from tests.polling import wait_for


class RecordingWriter:
    """A write function that records each transaction; the first one can be held open."""

    def __init__(self, *, hold_first: bool = False, fail_on=None):
        self.transactions: list[list] = []
        self.first_started = threading.Event()
        self.release_first = threading.Event()
        if not hold_first:
            self.release_first.set()
        self.fail_on = fail_on

    def __call__(self, items):
        if not self.transactions and not self.first_started.is_set():
            self.first_started.set()
            self.release_first.wait()
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot store {self.fail_on}")
        self.transactions.append(list(items))


def submit_in_threads(group_commit, items):
    errors = {}

    def submit(item):
        try:
            group_commit.submit(item)
        except Exception as exc:
            errors[item] = exc

    threads = [threading.Thread(target=submit, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return threads, errors


def test_a_lone_submit_is_written_in_its_own_transaction():
    writer = RecordingWriter()
    GroupCommit(writer).submit("a")
    assert writer.transactions == [["a"]]


def test_submits_that_arrive_during_a_write_share_the_next_transaction():
    writer = RecordingWriter(hold_first=True)
    group_commit = GroupCommit(writer)
    first, _ = submit_in_threads(group_commit, ["first"])
    assert writer.first_started.wait(30)

    others, errors = submit_in_threads(group_commit, [f"item-{i}" for i in range(8)])
    # All eight are queued behind the transaction in progress; none has returned.
    wait_for(lambda: len(group_commit._waiting) == 8, message="eight submits to queue")
    assert all(thread.is_alive() for thread in others)

    writer.release_first.set()
    for thread in first + others:
        thread.join(30)
    assert not errors
    assert writer.transactions[0] == ["first"]
    assert sorted(writer.transactions[1]) == sorted(f"item-{i}" for i in range(8))
    assert len(writer.transactions) == 2


def test_an_item_that_fails_fails_alone():
    writer = RecordingWriter(hold_first=True, fail_on="bad")
    group_commit = GroupCommit(writer)
    first, _ = submit_in_threads(group_commit, ["first"])
    assert writer.first_started.wait(30)
    others, errors = submit_in_threads(group_commit, ["good-1", "bad", "good-2"])
    wait_for(lambda: len(group_commit._waiting) == 3, message="three submits to queue")
    writer.release_first.set()
    for thread in first + others:
        thread.join(30)

    assert list(errors) == ["bad"]
    assert "cannot store bad" in str(errors["bad"])
    written = [item for transaction in writer.transactions for item in transaction]
    assert sorted(written) == ["first", "good-1", "good-2"]


def test_a_failing_lone_submit_raises_the_writers_error():
    writer = RecordingWriter(fail_on="bad")
    with pytest.raises(ValueError, match="cannot store bad"):
        GroupCommit(writer).submit("bad")


def test_when_a_leader_is_interrupted_nobody_in_its_group_believes_their_item_committed():
    class Interrupted(BaseException):
        pass

    first_started, release_first = threading.Event(), threading.Event()

    def write(items):
        if items == ["first"]:
            first_started.set()
            release_first.wait()
            return
        raise Interrupted()  # e.g. KeyboardInterrupt in the middle of the group's transaction

    group_commit = GroupCommit(write)
    first, _ = submit_in_threads(group_commit, ["first"])
    assert first_started.wait(30)
    outcomes = {}

    def submit(item):
        try:
            group_commit.submit(item)
            outcomes[item] = "committed"
        except Interrupted:
            outcomes[item] = "interrupted"  # the group's leader
        except RuntimeError as exc:
            outcomes[item] = str(exc)  # the rest of its group

    others = [threading.Thread(target=submit, args=(item,)) for item in ("x", "y")]
    for thread in others:
        thread.start()
    wait_for(lambda: len(group_commit._waiting) == 2, message="two submits to queue")
    release_first.set()
    for thread in first + others:
        thread.join(30)
    assert sorted(outcomes.values()) == ["The write was interrupted before it committed.", "interrupted"]


# --- AsyncGroupCommit: the same, for coroutines ---------------------------------


async def submit_all(group_commit, items) -> dict:
    """Submit `items` concurrently from this event loop; each item's outcome: "committed" or its error."""

    async def submit(item):
        try:
            await group_commit.submit(item)
        except Exception as exc:
            return str(exc)
        return "committed"

    return dict(zip(items, await asyncio.gather(*(submit(item) for item in items))))


def test_coroutines_that_submit_during_a_write_share_the_next_transaction():
    writer = RecordingWriter(hold_first=True)
    group_commit = AsyncGroupCommit(writer, name="test-writer")

    async def scenario():
        first = asyncio.ensure_future(group_commit.submit("first"))
        assert await asyncio.to_thread(writer.first_started.wait, 30)
        others = asyncio.ensure_future(submit_all(group_commit, [f"item-{i}" for i in range(8)]))
        await asyncio.to_thread(wait_for, lambda: group_commit._queue.qsize() == 8, message="eight submits to queue")
        # Nothing has returned while its transaction is not committed.
        assert not first.done() and not others.done()
        writer.release_first.set()
        await first
        return await others

    outcomes = event_loops.run(scenario())
    assert set(outcomes.values()) == {"committed"}
    assert writer.transactions[0] == ["first"]
    assert sorted(writer.transactions[1]) == sorted(f"item-{i}" for i in range(8))
    assert len(writer.transactions) == 2


def test_a_coroutines_item_that_fails_fails_alone():
    writer = RecordingWriter(hold_first=True, fail_on="bad")
    group_commit = AsyncGroupCommit(writer, name="test-writer")

    async def scenario():
        first = asyncio.ensure_future(group_commit.submit("first"))
        assert await asyncio.to_thread(writer.first_started.wait, 30)
        others = asyncio.ensure_future(submit_all(group_commit, ["good-1", "bad", "good-2"]))
        await asyncio.to_thread(wait_for, lambda: group_commit._queue.qsize() == 3, message="three submits to queue")
        writer.release_first.set()
        await first
        return await others

    outcomes = event_loops.run(scenario())
    assert outcomes == {"good-1": "committed", "bad": "cannot store bad", "good-2": "committed"}
    written = [item for transaction in writer.transactions for item in transaction]
    assert sorted(written) == ["first", "good-1", "good-2"]


def test_coroutines_of_two_event_loops_each_learn_their_own_outcome():
    writer = RecordingWriter(fail_on="bad")
    group_commit = AsyncGroupCommit(writer, name="test-writer")
    outcomes = {}

    def loop_in_thread(items):
        outcomes.update(asyncio.run(submit_all(group_commit, items)))

    threads = [threading.Thread(target=loop_in_thread, args=(items,)) for items in (["a", "bad"], ["b", "c"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == {"a": "committed", "bad": "cannot store bad", "b": "committed", "c": "committed"}
    assert sorted(item for transaction in writer.transactions for item in transaction) == ["a", "b", "c"]


def test_the_work_after_a_group_runs_once_its_waiters_are_answered_and_its_failure_stops_nothing():
    writer = RecordingWriter()
    answered = threading.Event()
    runs = []

    def after_group():
        # The group's waiter has its answer before this runs: it never waits for it.
        runs.append(answered.wait(30))
        if len(runs) == 1:
            raise RuntimeError("after the first group")

    group_commit = AsyncGroupCommit(writer, name="test-writer", after_group=after_group)

    async def submit_then_signal(item):
        await group_commit.submit(item)
        answered.set()

    event_loops.run(submit_then_signal("first"))
    wait_for(lambda: len(runs) == 1, message="the work after the first group")
    answered.clear()
    event_loops.run(submit_then_signal("second"))  # the writer outlived the failure
    wait_for(lambda: len(runs) == 2, message="the work after the second group")
    assert runs == [True, True]
    assert writer.transactions == [["first"], ["second"]]
