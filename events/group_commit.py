"""Group commit: concurrent writers share one transaction, each still waits for its own commit.

Committing costs the same for one small write as for a hundred, and SQLite
commits one writer at a time. So when many requests publish at once, the
first to find no write in progress becomes the leader: it writes everything
waiting at that moment, its own item included, in one transaction, then lets
the others return. Requests that arrive meanwhile wait for the next leader.
No request returns before the transaction holding its item has committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class _Ticket(Generic[Item]):
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
        self._waiting: list[_Ticket[Item]] = []
        self._waiting_lock = threading.Lock()

    def submit(self, item: Item) -> None:
        """Return once `item` is committed; raise what its transaction raised."""
        ticket = _Ticket(item)
        with self._waiting_lock:
            self._waiting.append(ticket)
        with self._leader:
            if not ticket.done:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._write_group(group)
        if not ticket.committed:
            raise ticket.error

    def _write_group(self, group: list[_Ticket[Item]]) -> None:
        try:
            self._write_all(group)
        finally:
            for ticket in group:
                if not ticket.committed and ticket.error is None:
                    # The leader was interrupted before this item's commit.
                    ticket.error = RuntimeError("The write was interrupted before it committed.")
                ticket.done = True

    def _write_all(self, group: list[_Ticket[Item]]) -> None:
        try:
            self._write([ticket.item for ticket in group])
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            # One item may be what fails: write each alone, so only it does.
            for ticket in group:
                try:
                    self._write([ticket.item])
                except Exception as item_exc:
                    ticket.error = item_exc
                else:
                    ticket.committed = True
        else:
            for ticket in group:
                ticket.committed = True
