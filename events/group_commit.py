"""Group commit: concurrent writers share one transaction, each still waits for its own commit.

Committing costs the same for one small write as for a hundred, and SQLite
commits one writer at a time. So when many requests publish at once, the
first to find no write in progress becomes the leader: it writes everything
waiting at that moment, its own item included, in one transaction, then lets
the others return. Requests that arrive meanwhile wait for the next leader.
No request returns before the transaction holding its item has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import close_old_connections

Item = TypeVar("Item")

logger = logging.getLogger(__name__)


class Ticket(Generic[Item]):
    __slots__ = ("item", "done", "committed", "error")

    def __init__(self, item: Item):
        self.item = item
        self.done = False
        self.committed = False
        self.error: BaseException | None = None


class GroupCommit(Generic[Item]):
    def __init__(self, write: Callable[[list[Item]], None]):
        """`write(items)` must store all the items in one transaction, or raise and store none."""
        self._write = write
        self._leader = threading.Lock()
        self._waiting: list[Ticket[Item]] = []
        self._waiting_lock = threading.Lock()

    def submit(self, item: Item) -> None:
        """Return once `item` is committed; raise what its transaction raised."""
        ticket = Ticket(item)
        with self._waiting_lock:
            self._waiting.append(ticket)
        with self._leader:
            if not ticket.done:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                write_group(self._write, group)
        if not ticket.committed:
            raise ticket.error


def write_group(write: Callable[[list[Item]], None], group: list[Ticket[Item]]) -> None:
    """Commit the tickets' items together and mark each ticket committed or failed, never neither."""
    try:
        _write_all(write, group)
    finally:
        for ticket in group:
            if not ticket.committed and ticket.error is None:
                # The writer was interrupted before this item's commit.
                ticket.error = RuntimeError("The write was interrupted before it committed.")
            ticket.done = True


def _write_all(write: Callable[[list[Item]], None], group: list[Ticket[Item]]) -> None:
    try:
        write([ticket.item for ticket in group])
    except Exception as exc:
        if len(group) == 1:
            group[0].error = exc
            return
        # One item may be what fails: write each alone, so only it does.
        for ticket in group:
            try:
                write([ticket.item])
            except Exception as item_exc:
                ticket.error = item_exc
            else:
                ticket.committed = True
    else:
        for ticket in group:
            ticket.committed = True


class AsyncGroupCommit(Generic[Item]):
    """Group commit for coroutines: a writer thread commits what waits, then wakes each waiter.

    A coroutine cannot wait for a thread lock without stopping its event loop,
    so here one thread of the process writes: it takes every item submitted
    since its last transaction, commits them together (write_group: an item
    that fails, fails alone) and settles their futures, one wake-up per event
    loop for the whole group.
    """

    def __init__(
        self, write: Callable[[list[Item]], None], *, name: str, after_group: Callable[[], None] | None = None
    ):
        """`write(items)` as for GroupCommit; it runs in the writer thread, named `name`.

        `after_group()`, if given, runs there too after each group's waiters
        are woken: work that needs the writer's connection, not their wait.
        """
        self._write = write
        self._name = name
        self._after_group = after_group
        self._queue: queue.SimpleQueue[tuple[Ticket[Item], asyncio.AbstractEventLoop, asyncio.Future]] = (
            queue.SimpleQueue()
        )
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()

    async def submit(self, item: Item) -> None:
        """Return once `item` is committed; raise what its transaction raised."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._start_writer()
        self._queue.put((Ticket(item), loop, future))
        await future

    def _start_writer(self) -> None:
        # Started by the first submit: a forked worker has no thread of its parent's.
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._writer.start()

    def _run(self) -> None:
        while True:
            waiting = [self._queue.get()]
            while True:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            tickets = [ticket for ticket, _, _ in waiting]
            write_group(self._write, tickets)
            if not all(ticket.committed for ticket in tickets):
                # Drop a connection the failure left unusable, as Django does
                # after a request. Not after every group: on PostgreSQL the next
                # use would then check the connection with a query of its own.
                close_old_connections()
            by_loop: dict[asyncio.AbstractEventLoop, list] = {}
            for ticket, loop, future in waiting:
                by_loop.setdefault(loop, []).append((ticket, future))
            for loop, settled in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                    loop.call_soon_threadsafe(_settle, settled)
            if self._after_group is not None:
                try:
                    self._after_group()
                except Exception:  # the writer must outlive it: the next group still commits
                    logger.exception("%s: the work after a group failed", self._name)
                    close_old_connections()


def _settle(settled: list[tuple[Ticket, asyncio.Future]]) -> None:
    for ticket, future in settled:
        if future.done():  # the waiter was cancelled
            continue
        if ticket.committed:
            future.set_result(None)
        else:
            future.set_exception(ticket.error)
