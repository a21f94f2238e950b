"""The ceiling: the same events stored by raw sqlite3, with nothing in between.

One transaction of `INSERT ... ON CONFLICT (topic, event_id) DO NOTHING`
through `executemany`, into a table built from the very DDL the migrations
created on the benchmark's database (same columns, unique constraint and
timeline index), with the pragmas the service uses (WAL, synchronous=NORMAL).
No HTTP, no parsing, no queue: what the aggregator's end-to-end throughput is
compared with.

No Django here: the load driver runs this in a process of its own, so the
table's name and DDL come from the caller (BenchmarkServer.event_table(),
which reads them from Event's model and the migrated database).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

# Rows per executemany call: single-event requests are not inserted one call each.
CHUNK_ROWS = 5000


class _Event(msgspec.Struct):
    topic: str
    event_id: str
    timestamp: str
    source: str
    payload: msgspec.Raw


_decode_batch = msgspec.json.Decoder(list[_Event] | _Event).decode


@dataclass(frozen=True)
class EventTable:
    """The events table as migrated: its name (Event._meta.db_table) and SQLite DDL."""

    name: str
    ddl: list[str]


@dataclass(frozen=True)
class Ceiling:
    events: int
    inserted: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def event_table(database: Path, name: str) -> EventTable:
    """The table `name` with its CREATE TABLE and CREATE INDEX statements, as migrated into `database`."""
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC",
            (name,),
        ).fetchall()
    finally:
        connection.close()
    if not rows:
        raise RuntimeError(f"{database} has no {name} table: was it migrated?")
    return EventTable(name, [sql for (sql,) in rows])


def database_rows(body: bytes) -> list[tuple[str, str, str, str, str]]:
    """A publish body's events as the aggregator stores them on SQLite.

    UUIDs as 32 hex digits, timestamps as naive UTC text, the payload as sent.
    The generator's timestamps are always UTC with a "Z", so text edits suffice.
    """
    decoded = _decode_batch(body)
    events = decoded if isinstance(decoded, list) else [decoded]
    return [
        (
            event.topic,
            event.event_id.replace("-", "").lower(),
            event.timestamp.rstrip("Z").replace("T", " "),
            event.source,
            bytes(event.payload).decode(),
        )
        for event in events
    ]


def measure(table: EventTable, bodies: Iterable[bytes], database: Path) -> Ceiling:
    """Insert every event of `bodies` in one transaction; time only the database work.

    Rows are prepared CHUNK_ROWS at a time outside the timed part (so memory
    stays flat for a million events), then inserted with one executemany per
    chunk inside the single transaction: BEGIN, the inserts and COMMIT (with
    the WAL checkpoint it may trigger) are timed.
    """
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        for statement in table.ddl:
            connection.execute(statement)
        sql = (
            f'INSERT INTO "{table.name}" (topic, event_id, timestamp, source, payload)'
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (topic, event_id) DO NOTHING"
        )
        events = inserted = 0
        seconds = 0.0
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        seconds += time.perf_counter() - started
        for rows in _chunks(bodies):
            started = time.perf_counter()
            cursor = connection.executemany(sql, rows)
            seconds += time.perf_counter() - started
            events += len(rows)
            inserted += cursor.rowcount
        started = time.perf_counter()
        connection.execute("COMMIT")
        seconds += time.perf_counter() - started
    finally:
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
    return Ceiling(events=events, inserted=inserted, seconds=seconds)


def measure_median(table: EventTable, bodies: list[bytes], database: Path, *, times: int) -> Ceiling:
    """The median of `times` measurements: this shared machine's noise is large."""
    runs = sorted((measure(table, bodies, database) for _ in range(times)), key=lambda run: run.seconds)
    return runs[len(runs) // 2]


def _chunks(bodies: Iterable[bytes]) -> Iterator[list[tuple[str, str, str, str, str]]]:
    """The bodies' rows in lists of about CHUNK_ROWS, whatever the request sizes."""
    chunk: list[tuple[str, str, str, str, str]] = []
    for body in bodies:
        chunk.extend(database_rows(body))
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
